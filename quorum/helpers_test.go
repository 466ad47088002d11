package quorum

// majority builds a MajorityConfig from a list of voter IDs.
func majority(ids ...uint64) MajorityConfig {
	c := MajorityConfig{}
	for _, id := range ids {
		c[id] = struct{}{}
	}
	return c
}
