package amchange

import (
	"errors"
	"fmt"
)

// Errors returned by Decode, always wrapped with a description of where the
// input went wrong; test them with errors.Is.
var (
	// ErrTruncated means the input ended before the chunk or one of its
	// fields was complete.
	ErrTruncated = errors.New("amchange: truncated input")
	// ErrChecksum means the chunk's checksum does not match its contents.
	ErrChecksum = errors.New("amchange: checksum mismatch")
	// ErrNotChange means the input is not a change chunk: wrong magic bytes,
	// or another kind of chunk (a document or a bundle).
	ErrNotChange = errors.New("amchange: not a change chunk")
	// ErrTooLarge means the input exceeds one of the Decoder's caps.
	ErrTooLarge = errors.New("amchange: change too large")
	// ErrMalformed means the input breaks the change format in some other
	// way.
	ErrMalformed = errors.New("amchange: malformed change")
	// ErrNotCanonical means the change is well formed but not as automerge
	// writes it: encoded otherwise than automerge encodes it, not in
	// automerge's normal form (sorted dependencies, actors and preds, the
	// values automerge keeps), or with an action automerge does not know.
	// Automerge refuses the last; it applies the others, but a saved
	// document holding such a change no longer loads, because on load
	// automerge re-encodes every change and the hashes no longer match.
	ErrNotCanonical = errors.New("amchange: change not in automerge's canonical encoding")
)

// malformed returns an ErrMalformed error with a description.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// tooLarge returns an ErrTooLarge error with a description.
func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooLarge}, args...)...)
}

// truncated returns an ErrTruncated error naming what was being read.
func truncated(what string) error {
	return fmt.Errorf("%w: reading %s", ErrTruncated, what)
}
