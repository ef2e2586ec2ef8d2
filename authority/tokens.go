package authority

import (
	"sync"
	"time"
)

// Checking an access token's Ed25519 signature cost more than anything
// else in authenticating a request, and a device sends the same token
// with every request for its 15 minutes. verifiedTokens remembers the
// tokens whose signature and claims checked out, by their whole text
// (signature included, so only those very bytes match), with the times
// that bound them; a remembered token is checked against the clock again
// on each use, and the device behind it is looked up every time, so a
// revoked device or member is refused at once.

// maxVerifiedTokens bounds the cache: more than the devices of a circle
// (30 members) hold at once. When it is full the cache starts over.
const maxVerifiedTokens = 1024

// verifiedToken is what a checked token says, and when it holds.
type verifiedToken struct {
	member, device   string
	notBefore, until time.Time // with the clock skew allowed
}

type verifiedTokens struct {
	mu sync.Mutex
	m  map[string]verifiedToken
}

// get returns the claims of token if it was checked and holds at now.
func (c *verifiedTokens) get(token string, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[token]
	if !ok {
		return verifiedToken{}, false
	}
	if now.Before(v.notBefore) || !now.Before(v.until) {
		delete(c.m, token)
		return verifiedToken{}, false
	}
	return v, true
}

func (c *verifiedTokens) put(token string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerifiedTokens {
		c.m = make(map[string]verifiedToken)
	}
	c.m[token] = v
}
