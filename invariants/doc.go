// Package invariants gates raftcore's expensive self-checks. Build with
// `-tags invariants` (as `make test` does) to turn them on; production
// builds leave Enabled false and the checks compile away.
package invariants
