// Package clickstream generates realistic analytics.js-shaped shop traffic
// for the load generator, the pipeline benchmark and the demo.
package clickstream

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// Clickstream is a pure generator of analytics.js-shaped events: a
// population of devices, each browsing in sessions (landing page, category
// pages, product views, cart adds, sometimes an identify and a purchase).
// Events of different devices interleave, as they do at a real collector.
//
// People behave as in a real shop, in realistic shares: some sign up
// (identify with a new userId); a few use a second device and log in there
// with the same userId (the stitcher merges the two devices' profiles); a
// few orders are refunded a while later (Order Refunded); and devices go
// quiet after a few sessions — they never send again and a new visitor
// takes their place, so the population stays the same size and inactivity
// segments have someone to find.
//
// It does no I/O and is not safe for concurrent use: each load worker owns
// one, seeded differently. A seed always produces the same stream.
type Clickstream struct {
	rng     *rand.Rand
	devices []device
	// prefix makes user and order ids unique to this generator.
	prefix string
	seq    uint64
	stats  Stats
}

// Stats counts what the simulated shoppers did so far.
type Stats struct {
	Events  int // events generated
	SignUps int // identifies that gave a person their userId
	// Logins are identifies on a person's further device, with the userId
	// the person signed up with elsewhere: each one merges two profiles.
	Logins  int
	Orders  int
	Refunds int
	// Quiet counts devices that went quiet: they send nothing more.
	Quiet int
}

// Shares of behaviour, chosen to look like a shop's analytics (and kept
// small, because the pipeline benchmark measures with this traffic).
const (
	// secondDeviceOneIn: one new device in this many belongs to someone
	// already known, who will log in on it.
	secondDeviceOneIn = 25
	// refundOneIn: one order in this many is refunded.
	refundOneIn = 20
	// quietOneIn: after each session, one device in this many goes quiet.
	quietOneIn = 4
	// favouriteOneIn: a product page is of the device's favourite
	// category one time in this many (otherwise any category).
	favouriteOneIn = 3
)

type product struct {
	id, name, category, brand string
	price                     float64
}

type campaign struct{ name, source, medium, term, content string }

// person is who uses one or more devices; a device of someone who has
// signed up logs in with their userId.
type person struct {
	userID, email, plan string
	devices             int // devices this person has used
}

// order is one completed order, for its refund.
type order struct {
	id      string
	revenue float64
	// dueIn is how many more of the device's events come before the refund.
	dueIn int
}

type device struct {
	anonID    string
	person    *person // shared by a person's devices
	userID    string  // set by the device's first identify; kept across sessions
	favourite int     // index into categories: what this shopper browses most
	sessions  int     // sessions started
	refund    *order  // an order that will be refunded, or nil
	ua        string
	ip        string
	locale    string
	campaign  *campaign // the session's, or nil (direct traffic)
	pagesLeft int       // 0: no session in progress
	page      pageView
	viewed    *product // last product viewed in this session
	pending   bool     // the product page was viewed; its Product Viewed is next
	cart      []product
}

type pageView struct{ name, category, path, title, referrer, search string }

const site = "https://shop.example"

var (
	categories = []string{"Shoes", "Jackets", "Backpacks", "Tents", "Sleeping Bags", "Headlamps", "Socks", "Trousers"}
	brands     = []string{"Northwind", "Alpenglow", "Trailhead", "Summit & Co", "Ridgeline"}
	adjectives = []string{"Trail", "Storm", "Ultralight", "Alpine", "Canyon", "Glacier", "Desert", "Forest"}
	nouns      = []string{"Runner", "Shell", "Pack", "Dome", "Cocoon", "Beam", "Crew", "Hiker"}
	plans      = []string{"free", "free", "free", "plus", "pro"}
	locales    = []string{"en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "nl-NL"}
	referrers  = []string{"https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.instagram.com/", ""}
	agents     = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	}
	campaigns = []campaign{
		{"summer_sale", "google", "cpc", "hiking boots", "ad_variant_a"},
		{"summer_sale", "facebook", "paid_social", "", ""},
		{"june_news", "newsletter", "email", "", "hero"},
		{"brand", "bing", "cpc", "northwind jacket", "text_ad_1"},
	}
)

// New returns a generator of devices simulated devices, seeded
// by seed so a run can be reproduced.
func New(seed uint64, devices int) *Clickstream {
	if devices < 1 {
		devices = 1
	}
	g := &Clickstream{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.prefix = strconv.FormatUint(g.rng.Uint64()&0xffffffffff, 36)
	g.devices = make([]device, devices)
	for i := range g.devices {
		g.devices[i] = g.newDevice(g.devices[:i])
	}
	return g
}

// Stats returns what the shoppers did so far.
func (g *Clickstream) Stats() Stats { return g.stats }

// newDevice returns a new visitor's device. One in secondDeviceOneIn is
// another device of the person of one of others (if they have used only
// one so far), who will log in on it; the rest are new people.
func (g *Clickstream) newDevice(others []device) device {
	d := device{
		anonID:    g.uuid(),
		ua:        agents[g.rng.IntN(len(agents))],
		ip:        g.ip(),
		locale:    locales[g.rng.IntN(len(locales))],
		favourite: g.rng.IntN(len(categories)),
	}
	if len(others) > 0 && g.rng.IntN(secondDeviceOneIn) == 0 {
		// At most two devices a person, so the stitcher's limits on
		// anonymous ids per profile never get in the way.
		if o := &others[g.rng.IntN(len(others))]; o.person.devices < 2 {
			d.person = o.person
			d.favourite = o.favourite // the same shopper, the same tastes
		}
	}
	if d.person == nil {
		d.person = &person{}
	}
	d.person.devices++
	return d
}

func (g *Clickstream) uuid() string {
	var b [16]byte
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	for i := 0; i < 8; i++ {
		b[i], b[8+i] = byte(hi>>(8*i)), byte(lo>>(8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// ip returns an address from the documentation ranges (RFC 5737): it looks
// like a public client address and belongs to nobody.
func (g *Clickstream) ip() string {
	nets := [...]string{"192.0.2.", "198.51.100.", "203.0.113."}
	return nets[g.rng.IntN(len(nets))] + strconv.Itoa(1+g.rng.IntN(254))
}

// product returns a random product, of the category fav when fav >= 0.
func (g *Clickstream) product(fav int) product {
	n := g.rng.IntN(5000)
	if fav >= 0 {
		n = n - n%len(categories) + fav
	}
	cat := categories[n%len(categories)]
	return product{
		id:       "prod_" + strconv.Itoa(10000+n),
		name:     adjectives[n%len(adjectives)] + " " + nouns[(n/len(adjectives))%len(nouns)] + " " + strconv.Itoa(1+n%4),
		category: cat,
		brand:    brands[n%len(brands)],
		price:    float64(1999+(n*7919)%28000) / 100,
	}
}

// Event appends one event's JSON to b and returns it with the event's type
// (the call it belongs to: track, page or identify). sentAt, when not zero,
// is written into the event as a single-event SDK call does.
func (g *Clickstream) Event(b []byte, now, sentAt time.Time) ([]byte, string) {
	d := &g.devices[g.rng.IntN(len(g.devices))]
	// The browser queued the event a moment before it was sent.
	ts := now.Add(-time.Duration(g.rng.IntN(250)) * time.Millisecond)
	w := jsonWriter{b: b}
	typ := g.step(d, &w)
	g.common(d, &w, ts, sentAt)
	g.stats.Events++
	return w.b, typ
}

// step advances the device's session by one event and writes the
// type-specific part of it.
func (g *Clickstream) step(d *device, w *jsonWriter) string {
	if d.pending { // the product page's own track call follows its page call
		d.pending = false
		p := *d.viewed
		return g.track(d, w, "Product Viewed", func(w *jsonWriter) {
			g.productProps(w, p)
			w.str("currency", "USD")
		})
	}
	if d.refund != nil {
		if d.refund.dueIn--; d.refund.dueIn <= 0 {
			return g.refund(d, w)
		}
	}
	if d.pagesLeft == 0 { // a new session: the landing page
		if d.sessions > 0 && d.refund == nil && g.rng.IntN(quietOneIn) == 0 {
			// This device goes quiet for good (a customer with a refund
			// still due stays: the shop is not done with them); a new
			// visitor takes its place.
			*d = g.newDevice(g.devices)
			g.stats.Quiet++
		}
		d.sessions++
		d.pagesLeft = 3 + g.rng.IntN(10)
		d.viewed, d.cart = nil, nil
		d.campaign = nil
		if g.rng.IntN(10) < 3 { // the rest is direct, organic or referral traffic
			d.campaign = &campaigns[g.rng.IntN(len(campaigns))]
		}
		ref := referrers[g.rng.IntN(len(referrers))]
		d.page = pageView{name: "Home", path: "/", title: "Northwind Outfitters", referrer: ref}
		if d.campaign != nil {
			d.page.search = "?utm_source=" + d.campaign.source + "&utm_medium=" + d.campaign.medium + "&utm_campaign=" + d.campaign.name
		}
		return g.pageEvent(d, w)
	}
	d.pagesLeft--
	// analytics.js reads the campaign from the URL's utm_ parameters, which
	// only the landing page has.
	d.campaign = nil
	r := g.rng.IntN(100)
	switch {
	case d.userID == "" && d.person.userID != "" && r < 30:
		return g.identify(d, w) // logs in on this device too
	case d.viewed != nil && r < 25: // cart add of the product on screen
		p := *d.viewed
		d.cart = append(d.cart, p)
		d.viewed = nil
		return g.track(d, w, "Product Added", func(w *jsonWriter) {
			g.productProps(w, p)
			w.num("quantity", 1)
			w.str("cart_id", "cart_"+d.anonID[:8])
		})
	case len(d.cart) > 0 && d.userID == "" && r < 40:
		return g.identify(d, w)
	case len(d.cart) > 0 && d.userID != "" && r < 50:
		return g.purchase(d, w)
	case r < 70: // a product page: its page call, then Product Viewed
		fav := -1
		if g.rng.IntN(favouriteOneIn) == 0 {
			fav = d.favourite
		}
		p := g.product(fav)
		d.viewed, d.pending = &p, true
		d.page = pageView{name: p.name, category: p.category, path: "/p/" + p.id, title: p.name, referrer: site + d.page.path}
		return g.pageEvent(d, w)
	case r < 85:
		cat := categories[g.rng.IntN(len(categories))]
		d.page = pageView{name: cat, category: "Category", path: "/c/" + slug(cat), title: cat, referrer: site + d.page.path}
		return g.pageEvent(d, w)
	default:
		if d.userID == "" && g.rng.IntN(4) == 0 {
			return g.identify(d, w) // signed up or logged in without buying
		}
		d.page = pageView{name: "Search", path: "/search", search: "?q=" + slug(nouns[g.rng.IntN(len(nouns))]), title: "Search results", referrer: site + d.page.path}
		return g.pageEvent(d, w)
	}
}

func (g *Clickstream) productProps(w *jsonWriter, p product) {
	w.str("product_id", p.id)
	w.str("category", p.category)
	w.str("name", p.name)
	w.str("brand", p.brand)
	w.num("price", p.price)
}

func (g *Clickstream) track(d *device, w *jsonWriter, event string, props func(*jsonWriter)) string {
	w.open()
	w.str("type", "track")
	w.str("event", event)
	w.key("properties")
	w.open()
	props(w)
	w.close()
	return "track"
}

func (g *Clickstream) pageEvent(d *device, w *jsonWriter) string {
	w.open()
	w.str("type", "page")
	w.str("name", d.page.name)
	if d.page.category != "" {
		w.str("category", d.page.category)
	}
	w.key("properties")
	w.open()
	w.str("path", d.page.path)
	w.str("referrer", d.page.referrer)
	w.str("search", d.page.search)
	w.str("title", d.page.title)
	w.str("url", site+d.page.path+d.page.search)
	w.close()
	return "page"
}

// identify is a sign-up, or a login when the person already signed up on
// another device: the same userId, email and plan.
func (g *Clickstream) identify(d *device, w *jsonWriter) string {
	p := d.person
	if p.userID == "" {
		g.seq++
		p.userID = "user_" + g.prefix + "_" + strconv.FormatUint(g.seq, 10)
		p.email = "shopper." + g.prefix + "." + strconv.FormatUint(g.seq, 10) + "@example.com"
		p.plan = plans[g.rng.IntN(len(plans))]
		g.stats.SignUps++
	} else {
		g.stats.Logins++
	}
	d.userID = p.userID
	w.open()
	w.str("type", "identify")
	w.key("traits")
	w.open()
	w.str("email", p.email)
	w.str("plan", p.plan)
	w.str("first_name", "Alex")
	w.str("last_name", "Morgan")
	w.bool("newsletter", g.rng.IntN(2) == 0)
	w.close()
	return "identify"
}

func (g *Clickstream) purchase(d *device, w *jsonWriter) string {
	g.seq++
	revenue := 0.0
	for _, p := range d.cart {
		revenue += p.price
	}
	cart := d.cart
	d.cart = nil
	id := "ord_" + g.prefix + "_" + strconv.FormatUint(g.seq, 10)
	revenue = float64(int(revenue*100+0.5)) / 100
	g.stats.Orders++
	if d.refund == nil && g.rng.IntN(refundOneIn) == 0 {
		d.refund = &order{id: id, revenue: revenue, dueIn: 5 + g.rng.IntN(30)}
	}
	return g.track(d, w, "Order Completed", func(w *jsonWriter) {
		w.str("order_id", id)
		w.num("revenue", revenue)
		w.num("shipping", 4.95)
		w.str("currency", "USD")
		w.key("products")
		w.b = append(w.b, '[')
		w.first = true
		for i, p := range cart {
			if i == 3 { // an order page lists the rest as a count
				break
			}
			w.comma()
			w.open()
			w.str("product_id", p.id)
			w.str("category", p.category)
			w.num("price", p.price)
			w.num("quantity", 1)
			w.close()
		}
		w.b = append(w.b, ']')
		w.first = false
		w.num("item_count", float64(len(cart)))
	})
}

// refund sends the refund of the device's earlier order, in full.
func (g *Clickstream) refund(d *device, w *jsonWriter) string {
	o := d.refund
	d.refund = nil
	g.stats.Refunds++
	return g.track(d, w, "Order Refunded", func(w *jsonWriter) {
		w.str("order_id", o.id)
		w.num("revenue", o.revenue)
		w.str("currency", "USD")
	})
}

// common writes the fields every analytics.js event has and closes it.
func (g *Clickstream) common(d *device, w *jsonWriter, ts, sentAt time.Time) {
	w.str("anonymousId", d.anonID)
	if d.userID != "" {
		w.str("userId", d.userID)
	}
	w.str("messageId", "ajs-next-"+strconv.FormatInt(ts.UnixMilli(), 10)+"-"+g.uuid())
	w.time("timestamp", ts)
	w.key("context")
	w.open()
	w.key("library")
	w.open()
	w.str("name", "analytics.js")
	w.str("version", "npm:next-1.72.0")
	w.close()
	w.key("page")
	w.open()
	w.str("path", d.page.path)
	w.str("referrer", d.page.referrer)
	w.str("search", d.page.search)
	w.str("title", d.page.title)
	w.str("url", site+d.page.path+d.page.search)
	w.close()
	w.str("userAgent", d.ua)
	w.str("locale", d.locale)
	w.str("ip", d.ip)
	if c := d.campaign; c != nil {
		w.key("campaign")
		w.open()
		w.str("name", c.name)
		w.str("source", c.source)
		w.str("medium", c.medium)
		if c.term != "" {
			w.str("term", c.term)
		}
		if c.content != "" {
			w.str("content", c.content)
		}
		w.close()
	}
	w.close()
	w.key("integrations")
	w.open()
	w.close()
	if !sentAt.IsZero() {
		w.time("sentAt", sentAt)
	}
	w.close()
}

// Request appends the body of one request carrying n events to b and
// returns it with the path to post it to and the body's event types: a
// single call (/v1/track, /v1/page, /v1/identify) for n == 1, /v1/batch
// otherwise.
func (g *Clickstream) Request(b []byte, n int, now time.Time) ([]byte, string) {
	if n <= 1 {
		b, typ := g.Event(b, now, now)
		return b, "/v1/" + typ
	}
	b = append(b, `{"batch":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = g.Event(b, now, time.Time{})
	}
	b = append(b, `],"sentAt":"`...)
	b = now.UTC().AppendFormat(b, isoMillis)
	b = append(b, `"}`...)
	return b, "/v1/batch"
}

func slug(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			out = append(out, c)
		default:
			out = append(out, '-')
		}
	}
	return string(out)
}

// isoMillis is the timestamp form analytics.js sends.
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

// jsonWriter appends a JSON object by hand: encoding/json's reflection
// would make the load generator, not the collector, the bottleneck on a
// shared two-core machine.
type jsonWriter struct {
	b     []byte
	first bool // no member written yet at the current level
}

func (w *jsonWriter) comma() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
}

func (w *jsonWriter) open() {
	w.b = append(w.b, '{')
	w.first = true
}

func (w *jsonWriter) close() {
	w.b = append(w.b, '}')
	w.first = false
}

func (w *jsonWriter) key(k string) {
	w.comma()
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
	w.first = true // the value follows without a comma
}

func (w *jsonWriter) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
	w.first = false
}

func (w *jsonWriter) num(k string, v float64) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64)
	w.first = false
}

func (w *jsonWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
	w.first = false
}

func (w *jsonWriter) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, isoMillis)
	w.b = append(w.b, '"')
	w.first = false
}

// appendJSONString quotes s as a JSON string (the generator's strings are
// UTF-8; only quotes, backslashes and control characters need escaping).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
