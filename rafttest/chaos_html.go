package rafttest

import (
	"fmt"
	"io"

	"github.com/anishathalye/porcupine"
)

// WriteHTML writes a picture of the run as a self-contained HTML page:
// porcupine's view of the clients' operations (for a history that is not
// linearizable, the longest linearizable prefix of each key and where it
// breaks), with the run's timeline beside it: one row per node with its
// role and term over time (down while crashed; commit and applied in each
// stretch's tooltip) and one with its commit and applied indexes every
// ten ticks, a row of the network's partitions, one of the messages
// delivered and lost every ten ticks, and one of violations. Time is in
// ticks of 1000 units.
func (r *ChaosResult) WriteHTML(w io.Writer) error {
	_, info := porcupine.CheckOperationsVerbose(r.model, r.history, 0)
	info.AddAnnotations(r.timeline)
	return porcupine.Visualize(r.model, info, w)
}

// closeSpan puts n's current stretch on the timeline.
func (r *chaosRun) closeSpan(n *chaosNode) {
	if n.span.what == "" {
		return
	}
	color := map[bool]string{true: "#cde", false: "#eee"}[n.span.what != "down"]
	if len(n.span.what) > 6 && n.span.what[:6] == "Leader" {
		color = "#9c9"
	} else if n.span.what == "down" {
		color = "#e99"
	}
	r.timeline = append(r.timeline, porcupine.Annotation{
		Tag:             fmt.Sprintf("node %d", n.id),
		Start:           n.span.start * 1000,
		End:             max(r.now*1000, n.span.start*1000+1),
		Description:     n.span.what,
		Details:         fmt.Sprintf("node %d %s from tick %d to %d; commit %d, applied %d", n.id, n.span.what, n.span.start, r.now, n.commit, n.applied),
		BackgroundColor: color,
	})
	n.span = nodeSpan{}
}

// mark puts a point event on the timeline under tag.
func (r *chaosRun) mark(tag, what, details, color string) {
	r.timeline = append(r.timeline, porcupine.Annotation{
		Tag: tag, Start: r.now * 1000, Description: what, Details: details, BackgroundColor: color,
	})
}

// closeWindow puts the window of windowTicks ending now on the timeline:
// the messages delivered and lost, and each running node's commit and
// applied indexes.
func (r *chaosRun) closeWindow() {
	start := (r.now + 1 - windowTicks) * 1000
	end := (r.now+1)*1000 - 1
	r.timeline = append(r.timeline, porcupine.Annotation{
		Tag: "messages", Start: start, End: end,
		Description: fmt.Sprintf("%d/%d lost", r.window.lost, r.window.delivered+r.window.lost),
		Details:     fmt.Sprintf("ticks %d to %d: %d messages delivered, %d lost", r.now+1-windowTicks, r.now, r.window.delivered, r.window.lost),
	})
	r.window.delivered, r.window.lost = 0, 0
	for _, n := range r.nodes {
		if n.srv == nil {
			continue
		}
		r.timeline = append(r.timeline, porcupine.Annotation{
			Tag: fmt.Sprintf("node %d log", n.id), Start: start, End: end,
			Description: fmt.Sprintf("c%d a%d", n.commit, n.applied),
			Details:     fmt.Sprintf("node %d at tick %d: commit %d, applied %d", n.id, r.now, n.commit, n.applied),
		})
	}
}
