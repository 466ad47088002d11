//go:build invariants

package invariants

// Enabled is true when the build turns on expensive self-checks.
const Enabled = true
