package soak

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coder/websocket"
)

// checkStable checks what the stable connections received: every message
// posted to them with a nil error once and in order per sender, and every
// post to stableGroup that skipped nobody.
func (r *run) checkStable(stable []*client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range stable {
		c.mu.Lock()
		posts := slices.Clone(c.posts)
		c.mu.Unlock()
		if err := checkOrder(posts); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("stable %s: %v", c.name, err))
			continue
		}
		direct := map[string][]int{}
		group := map[string][]int{}
		for _, p := range posts {
			key, from, seq, _ := parsePost(p)
			switch {
			case key[0] == 'd':
				direct[from] = append(direct[from], seq)
			case key == "g "+stableGroup+" "+from:
				group[from] = append(group[from], seq)
			}
		}
		for from, want := range r.direct[c.id] {
			if !slices.Equal(want, direct[from]) {
				r.problems = append(r.problems, fmt.Sprintf("stable %s from %s: got %d messages, want %d, once and in order",
					c.name, from, len(direct[from]), len(want)))
			}
			r.checkedDirect += len(want)
		}
		for from, got := range direct {
			if _, ok := r.direct[c.id][from]; !ok {
				r.problems = append(r.problems, fmt.Sprintf("stable %s: %d messages from %s, which posted none with a nil error", c.name, len(got), from))
			}
		}
		for from, must := range r.group {
			got := group[from]
			for _, seq := range must {
				if _, ok := slices.BinarySearch(got, seq); !ok {
					r.problems = append(r.problems, fmt.Sprintf("stable %s: group post %d of %s missing", c.name, seq, from))
					break
				}
			}
			r.checkedGroup += len(must)
		}
	}
}

// check fills sum: $disconnect exactly once per accepted connection, with the
// code and reason of its way of ending; the stable connections' close frames.
func (r *run) check(sum *Summary) {
	r.mu.Lock()
	stable := r.stableClients
	r.mu.Unlock()
	// Shutdown returns once the server has read each client's answer to its
	// close frame; the client's reader, which wrote that answer, may not
	// have returned yet on a loaded machine, so it gets a bounded while.
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	expired := false
	var late []*client
	for _, c := range stable {
		if !expired {
			select {
			case <-c.ended:
				continue
			case <-timeout.C:
				expired = true
			}
		}
		select {
		case <-c.ended:
		default:
			late = append(late, c)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range stable {
		if slices.Contains(late, c) {
			r.problems = append(r.problems, fmt.Sprintf("stable %s: still open %v after Shutdown", c.name, wait))
		} else {
			var ce websocket.CloseError
			if !errors.As(c.err, &ce) || ce.Code != websocket.StatusGoingAway {
				r.problems = append(r.problems, fmt.Sprintf("stable %s: after Shutdown %v, want close 1001", c.name, c.err))
			}
		}
		c.ws.CloseNow()
	}
	sum.Dialled = int(r.dialled.Load())
	sum.Accepted = len(r.accepted)
	for id, n := range r.accepted {
		if n != 1 {
			r.problems = append(r.problems, fmt.Sprintf("%s: $connect ran %d times", id, n))
		}
		d := r.disconnects[id]
		sum.Disconnects += len(d)
		switch {
		case len(d) == 0:
			sum.Missing++
			r.problems = append(r.problems, fmt.Sprintf("%s: no $disconnect", id))
			continue
		case len(d) > 1:
			sum.Repeated++
			r.problems = append(r.problems, fmt.Sprintf("%s: %d $disconnect events", id, len(d)))
		}
		w, ok := r.expect[id]
		if !ok {
			continue // a dial whose check failed is reported already
		}
		if d[0].code != w.code || d[0].reason != w.reason {
			r.problems = append(r.problems, fmt.Sprintf("%s (%s): $disconnect %d %q, want %d %q",
				id, w.name, d[0].code, d[0].reason, w.code, w.reason))
		}
	}
	for id := range r.disconnects {
		if r.accepted[id] == 0 {
			r.problems = append(r.problems, fmt.Sprintf("%s: $disconnect without $connect", id))
		}
	}
	if sum.Dialled != sum.Accepted {
		r.problems = append(r.problems, fmt.Sprintf("%d handshakes succeeded, $connect accepted %d", sum.Dialled, sum.Accepted))
	}
	for _, w := range ways {
		if r.endings[w.name] == 0 && r.cfg.Conns >= len(ways) {
			r.problems = append(r.problems, fmt.Sprintf("no connection ended by %s", w.name))
		}
	}
	sum.Endings = r.endings
	sum.Endings["Shutdown"] = len(r.stableClients)
	sum.Direct = r.directRes
	sum.Malformed = r.malformed
	sum.GroupPosts, sum.GroupDelivered, sum.GroupSkipped, sum.GroupGone = r.groupN[0], r.groupN[1], r.groupN[2], r.groupN[3]
	sum.CheckedDirect, sum.CheckedGroup = r.checkedDirect, r.checkedGroup
	sum.Problems = r.problems
}
