package trackingplan

import (
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// benchEvents is a realistic mix for a web shop: mostly page and product
// views, some cart and checkout steps, a few identifies and orders, video,
// one unplanned event and one order with mistakes.
var benchEvents = []*eventv1.Event{
	withProps(eventv1.EventType_EVENT_TYPE_PAGE, `{"path":"/collections/games","url":"https://shop.example/collections/games","title":"Games","referrer":"https://www.google.com/","search":""}`),
	withProps(eventv1.EventType_EVENT_TYPE_PAGE, `{"path":"/products/monopoly","url":"https://shop.example/products/monopoly","title":"Monopoly: 3rd Edition","referrer":"https://shop.example/collections/games"}`),
	track("Products Searched", `{"query":"blue hotpants"}`),
	track("Product List Viewed", `{"list_id":"hot_deals_1","category":"Deals","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"position":1,"category":"Games","url":"https://www.example.com/product/path","image_url":"https://www.example.com/product/path.jpg"},{"product_id":"505bd76785ebb509fc183733","sku":"46493-32","name":"Uno Card Game","price":3,"quantity":1,"position":2,"category":"Games"}]}`),
	track("Product Viewed", `{"product_id":"507f1f77bcf86cd799439011","sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition","brand":"Hasbro","variant":"200 pieces","price":18.99,"quantity":1,"coupon":"MAYDEALS","position":3,"url":"https://www.example.com/product/path","image_url":"https://www.example.com/product/path.jpg"}`),
	track("Product Viewed", `{"product_id":"505bd76785ebb509fc183733","sku":"46493-32","name":"Uno Card Game","price":3,"quantity":1}`),
	track("Product Added", `{"cart_id":"skdjsidjsdkdj29j","product_id":"507f1f77bcf86cd799439011","sku":"G-32","category":"Games","name":"Monopoly: 3rd Edition","brand":"Hasbro","variant":"200 pieces","price":18.99,"quantity":1,"coupon":"MAYDEALS","position":3}`),
	track("Cart Viewed", `{"cart_id":"d92jd29jd92jd29j92d92jd","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games"}]}`),
	track("Checkout Started", `{"order_id":"50314b8e9bcf000000000000","affiliation":"Google Store","value":30,"revenue":25,"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games"},{"product_id":"505bd76785ebb509fc183733","sku":"46493-32","name":"Uno Card Game","price":3,"quantity":2,"category":"Games"}]}`),
	track("Checkout Step Viewed", `{"checkout_id":"50314b8e9bcf000000000000","step":2,"shipping_method":"Fedex","payment_method":"card"}`),
	track("Payment Info Entered", `{"checkout_id":"39f39fj39f3jf93fj9fj39fj3f","order_id":"dkfsjidfjsdifsdfksdjfkdsfjsdfkdsf","step":3,"payment_method":"card"}`),
	track("Order Completed", `{"checkout_id":"fksdjfsdjfisjf9sdfjsd9f","order_id":"50314b8e9bcf000000000000","affiliation":"Google Store","total":27.5,"subtotal":22.5,"revenue":25,"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games","url":"https://www.example.com/product/path","image_url":"https:///www.example.com/product/path.jpg"},{"product_id":"505bd76785ebb509fc183733","sku":"46493-32","name":"Uno Card Game","price":3,"quantity":2,"category":"Games"}]}`),
	track("Order Completed", `{"order_id":"50314b8e9bcf000000000001","revenue":"25.00","total":27.5,"currency":"usd","products":[{"product_id":"507f1f77bcf86cd799439011","name":"Monopoly: 3rd Edition","price":19,"quantity":1}]}`),
	track("Video Content Playing", `{"session_id":"12345","asset_id":"0129370","pod_id":"segA","title":"Interview with Tony Robbins","description":"short description","keywords":["entrepreneurship","motivation"],"season":"2","episode":"177","genre":"entertainment","program":"Tech Hour","publisher":"Tech Crunch","position":20,"total_length":360,"channel":"Tech Crunch","full_episode":true,"livestream":false,"airdate":"1991-08-13T00:00:00Z"}`),
	track("Video Playback Started", `{"session_id":"12345","content_asset_ids":["0129370"],"content_pod_ids":["segA","segB"],"position":0,"total_length":392,"bitrate":100,"framerate":29.00,"video_player":"youtube","sound":55,"full_screen":false,"ad_enabled":false,"quality":"1080p","livestream":false}`),
	&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, TraitsJson: []byte(`{"email":"peter@example.com","first_name":"Peter","last_name":"Gibbons","phone":"+15555550100","created_at":"2024-02-17T12:00:00Z","plan":"pro","age":34,"address":{"city":"Austin","country":"US","postal_code":"78701"}}`)},
	track("Experiment Viewed", `{"experiment_id":"exp_checkout_button","variation":"B"}`),
	track("Signed Up", `{"method":"google"}`),
	withProps(eventv1.EventType_EVENT_TYPE_SCREEN, `{"name":"Home"}`),
	withTraits(eventv1.EventType_EVENT_TYPE_GROUP, `{"name":"Initech","employees":329,"industry":"Technology","plan":"enterprise"}`),
}

// objectBytes is the size of the JSON object Check decodes for ev.
func objectBytes(ev *eventv1.Event) int {
	switch ev.GetType() {
	case eventv1.EventType_EVENT_TYPE_IDENTIFY, eventv1.EventType_EVENT_TYPE_GROUP:
		return len(ev.TraitsJson)
	}
	return len(ev.PropertiesJson)
}

func benchBytes() int64 {
	n := 0
	for _, ev := range benchEvents {
		n += objectBytes(ev)
	}
	return int64(n / len(benchEvents))
}

// BenchmarkCheck is the validator's per-event cost with a 20-event
// ecommerce and video plan: decode properties or traits, validate, flatten
// any violations. One op is one event of the mix.
func BenchmarkCheck(b *testing.B) {
	p := readPlan(b, "ecommerce.yaml")
	violations := 0
	for _, ev := range benchEvents {
		violations += len(p.Check(ev).Violations)
	}
	if violations == 0 {
		b.Fatal("the mix has no bad event")
	}
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Check(benchEvents[i%len(benchEvents)])
	}
}

// BenchmarkPassThrough decodes the same objects with the same decoder and
// validates nothing: the floor under BenchmarkCheck, so the cost of the
// schemas themselves is the difference.
func BenchmarkPassThrough(b *testing.B) {
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := benchEvents[i%len(benchEvents)]
		raw := ev.PropertiesJson
		if t := ev.GetType(); t == eventv1.EventType_EVENT_TYPE_IDENTIFY || t == eventv1.EventType_EVENT_TYPE_GROUP {
			raw = ev.TraitsJson
		}
		if _, err := decodeObject(raw); err != nil {
			b.Fatal(err)
		}
	}
}
