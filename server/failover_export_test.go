package server

import "time"

// SetLeaseBucketTTL sets the TTL new lease buckets get, for a test of a
// lease JetStream does not expire in time; the returned func restores it.
func SetLeaseBucketTTL(d time.Duration) (restore func()) {
	old := leaseBucketTTL
	leaseBucketTTL = d
	return func() { leaseBucketTTL = old }
}
