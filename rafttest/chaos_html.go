package rafttest

import (
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
