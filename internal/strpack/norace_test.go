//go:build !race

package strpack_test

const raceEnabled = false
