//go:build race

package strpack_test

// The race detector turns Go's tiny allocator off.
const raceEnabled = true
