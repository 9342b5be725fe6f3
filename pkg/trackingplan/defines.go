package trackingplan

// Defines reports whether the plan lists the track event name, so a caller
// can use the name as a bounded metric label.
func (p *Plan) Defines(event string) bool {
	if p == nil {
		return false
	}
	_, ok := p.events[event]
	return ok
}
