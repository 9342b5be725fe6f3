package main

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is what the demo's self-check judges.
type Outcome struct {
	Accepted      int64
	FirstErr      string
	FirstTrigger  time.Duration // 0: none arrived
	TriggerWithin time.Duration
	// InClickHouse is how many of the demo's events ClickHouse holds;
	// Counted is false when it could not be asked.
	InClickHouse int64
	Counted      bool
	CountErr     string
}

// verdict says what went wrong, every problem at once, each with where
// to look.
func verdict(o Outcome) error {
	var errs []error
	if o.Accepted == 0 {
		msg := "the collector accepted no event"
		if o.FirstErr != "" {
			msg += ": " + o.FirstErr
		}
		errs = append(errs, errors.New(msg+" (is make up running? see .local/logs/collector.log)"))
	}
	switch {
	case o.FirstTrigger == 0:
		errs = append(errs, fmt.Errorf("no segment trigger arrived on the membership topic within %v of the start (see .local/logs/segmenter.log)", o.TriggerWithin))
	case o.FirstTrigger > o.TriggerWithin:
		errs = append(errs, fmt.Errorf("the first segment trigger took %v, more than %v (see .local/logs/segmenter.log)", o.FirstTrigger.Round(100*time.Millisecond), o.TriggerWithin))
	}
	switch {
	case !o.Counted:
		errs = append(errs, fmt.Errorf("could not count the demo's events in ClickHouse: %s", o.CountErr))
	case o.InClickHouse == 0:
		errs = append(errs, errors.New("ClickHouse holds none of the demo's events (see .local/logs/loader.log)"))
	}
	return errors.Join(errs...)
}
