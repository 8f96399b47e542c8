package dockerd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Keeping the owner cache true: one long-lived subscription to dockerd's
// destroy events, and its container create and rename events (which change
// what a name means), reconnected with backoff. The cache is trusted only
// while the subscription is up; see owner_cache.go.

const (
	eventsBackoffMin = 100 * time.Millisecond
	eventsBackoffMax = 5 * time.Second
	// eventsReplay reaches back before the subscription: dockerd flushes
	// the stream's headers before it subscribes, and replays the events
	// since the time asked for from its recent-events buffer, so that a
	// destroy in between is not missed.
	eventsReplay = time.Second
)

// EventsState reports the owner cache's event stream to WatchEvents'
// caller: up (the cache is trusted) or down with why (the cache is emptied
// and bypassed). It is called on each change, not on each retry.
type EventsState func(up bool, err error)

// WatchEvents follows dockerd's destroy events into the owner cache until
// ctx ends. Until it has subscribed, and whenever the stream breaks, owner
// lookups all go to dockerd. It returns when ctx ends.
func (d *Client) WatchEvents(ctx context.Context, report EventsState) {
	if report == nil {
		report = func(bool, error) {}
	}
	backoff := eventsBackoffMin
	up, reported := false, false
	for {
		err := d.followEvents(ctx, func() {
			up, reported, backoff = true, true, eventsBackoffMin
			report(true, nil)
		})
		d.cache.distrust()
		if ctx.Err() != nil {
			return
		}
		if up || !reported {
			up, reported = false, true
			report(false, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, eventsBackoffMax)
	}
}

// followEvents subscribes, trusts the cache (calling subscribed), and
// applies events until the stream ends; it returns why it ended.
func (d *Client) followEvents(ctx context.Context, subscribed func()) error {
	ctx, cancel := context.WithCancel(ctx)
	// Ends the SDK's reading goroutine however this returns.
	defer cancel()
	// The replay is asked for by dockerd's clock, which may not be this
	// machine's (a TCP upstream).
	var since time.Time
	askCtx, askCancel := d.bound(ctx)
	err := d.ask(askCtx, func(ctx context.Context) error {
		info, err := d.sdk.Info(ctx)
		if err != nil {
			return err
		}
		since, err = time.Parse(time.RFC3339Nano, info.SystemTime)
		if err != nil {
			return fmt.Errorf("dockerd's time %q: %w", info.SystemTime, err)
		}
		return nil
	})
	askCancel()
	if err != nil {
		return fmt.Errorf("reading dockerd's clock: %w", err)
	}
	since = since.Add(-eventsReplay)
	msgs, errs := d.sdk.Events(ctx, events.ListOptions{
		Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("type", string(events.NetworkEventType)),
			filters.Arg("event", string(events.ActionDestroy)),
			// A caller container's name is one of its subjects, and a
			// name cached for a tenant (name_cache.go) moves.
			filters.Arg("event", string(events.ActionRename)),
			// A new container takes a name.
			filters.Arg("event", string(events.ActionCreate)),
		),
	})
	// The SDK returns once dockerd answered the subscription or it failed;
	// a failure is on errs an instant later, and the distrust that follows
	// it drops whatever was stored meanwhile (answers fresh from dockerd).
	select {
	case err, ok := <-errs:
		return subscriptionEnd(err, ok)
	default:
	}
	d.cache.trust()
	subscribed()
	for {
		select {
		case m := <-msgs:
			d.applyEvent(m)
		case err, ok := <-errs:
			return subscriptionEnd(err, ok)
		}
	}
}

func subscriptionEnd(err error, ok bool) error {
	if !ok || err == nil {
		return errors.New("dockerd ended the event stream")
	}
	return fmt.Errorf("dockerd's event stream: %w", err)
}

// applyEvent drops what a destroy event removed, a renamed container's
// name, and the names a container's create, rename or destroy changed the
// meaning of.
func (d *Client) applyEvent(m events.Message) {
	if m.Actor.ID == "" {
		return
	}
	if m.Type == events.ContainerEventType {
		switch m.Action {
		case events.ActionCreate, events.ActionRename, events.ActionDestroy:
			// By ID first of all: oldName is read from a map the
			// container's labels were copied into, and a label may
			// overwrite it; the ID and name attributes are dockerd's.
			d.cache.forgetNames(m.Actor.ID, m.Actor.Attributes["name"], m.Actor.Attributes["oldName"])
		}
	}
	if m.Action == events.ActionRename && m.Type == events.ContainerEventType {
		d.cache.renamed(m.Actor.ID)
		return
	}
	if m.Action != events.ActionDestroy {
		return
	}
	switch m.Type {
	case events.ContainerEventType:
		d.cache.destroyed(ObjectContainer, m.Actor.ID)
	case events.NetworkEventType:
		d.cache.destroyed(ObjectNetwork, m.Actor.ID)
	}
}
