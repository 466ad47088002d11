package wal

// SyncSitesForTest returns the names of the syncs the log relies on.
func SyncSitesForTest() []string {
	names := make([]string, numSyncSites)
	for i := range names {
		names[i] = syncSite(i).String()
	}
	return names
}

// SkipSyncForTest turns the named sync site into a no-op until restore is
// called. Tests that use it must not run in parallel.
func SkipSyncForTest(name string) (restore func()) {
	for i := range numSyncSites {
		if i.String() == name {
			skipSync[i] = true
			return func() { skipSync[i] = false }
		}
	}
	panic("wal: no sync site " + name)
}
