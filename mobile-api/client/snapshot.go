package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/automerge/automerge-go"
)

// Snapshot fetches a document's stored snapshot by the hash GET
// /v1/circle names for it (Circle.Snapshots): the automerge save of the
// whole document, for automerge's load. The bytes are checked against the
// hash.
func (c *Client) Snapshot(ctx context.Context, doc, hash string) ([]byte, error) {
	if err := checkID(doc); err != nil {
		return nil, err
	}
	path := "/v1/docs/" + url.PathEscape(doc) + "/snapshot/" + url.PathEscape(hash)
	token, err := c.bearer(ctx, false)
	if err != nil {
		return nil, err
	}
	data, err := c.getBytes(ctx, path, token)
	var ae *APIError
	if c.creds != nil && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		if token, err = c.bearer(ctx, true); err != nil {
			return nil, err
		}
		data, err = c.getBytes(ctx, path, token)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, fmt.Errorf("GET %s: the bytes do not have the hash they were asked by", path)
	}
	return data, nil
}

// LatestSnapshot fetches a document's snapshot holding all of it (GET
// /v1/docs/{doc}/snapshot, which compacts the document first if needed,
// and redirects to the content-addressed snapshot) and its hash.
func (c *Client) LatestSnapshot(ctx context.Context, doc string) (data []byte, hash string, err error) {
	if err := checkID(doc); err != nil {
		return nil, "", err
	}
	token, err := c.bearer(ctx, false)
	if err != nil {
		return nil, "", err
	}
	path := "/v1/docs/" + url.PathEscape(doc) + "/snapshot"
	data, final, err := c.getBytesAt(ctx, path, token)
	var ae *APIError
	if c.creds != nil && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		if token, err = c.bearer(ctx, true); err != nil {
			return nil, "", err
		}
		data, final, err = c.getBytesAt(ctx, path, token)
	}
	if err != nil {
		return nil, "", err
	}
	hash = final[strings.LastIndexByte(final, '/')+1:]
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, "", fmt.Errorf("GET %s: the bytes do not have the hash their URL names", path)
	}
	return data, hash, nil
}

func (c *Client) getBytes(ctx context.Context, path, token string) ([]byte, error) {
	data, _, err := c.getBytesAt(ctx, path, token)
	return data, err
}

// getBytesAt GETs path (following redirects on the same server, which
// keep the token) and returns the body and the path it came from.
func (c *Client) getBytesAt(ctx context.Context, path, token string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.httpc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("GET %s: %w", path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("%w at %s (%v)", ErrUnreachable, c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	if len(data) > maxResponse {
		return nil, "", fmt.Errorf("GET %s: answer larger than %d bytes", path, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", decodeError(resp.StatusCode, data)
	}
	return data, resp.Request.URL.Path, nil
}

// seedFromSnapshots loads, into every document the device does not hold
// yet, its snapshot: by the hash the circle names for it (closed ledger
// segments), else the latest (GET /v1/docs/{doc}/snapshot). The sync
// after it carries only what the snapshot lacks, and the server answers a
// document the device holds whole without loading it.
// A snapshot that cannot be fetched is skipped: sync brings the document
// the ordinary way.
func (d *Device) seedFromSnapshots(ctx context.Context, c *Client, snapshots map[string]string, docs []*syncDoc, sum *SyncSummary) error {
	for _, sd := range docs {
		if len(sd.heads) > 0 {
			continue
		}
		var data []byte
		var err error
		if hash := snapshots[sd.ref.id]; hash != "" {
			data, err = c.Snapshot(ctx, sd.ref.id, hash)
		} else {
			data, _, err = c.LatestSnapshot(ctx, sd.ref.id)
		}
		if errors.Is(err, ErrUnreachable) || ctx.Err() != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if err != nil {
			continue // compacted again meanwhile, or refused: sync brings it
		}
		if err := loadIncremental(sd.doc, data); err != nil {
			return fmt.Errorf("sync: snapshot of %s (%s): %w", sd.ref.label, sd.ref.id, err)
		}
		sd.dirty = true
		sum.Snapshots++
		sum.SnapshotBytes += len(data)
	}
	return nil
}

// loadIncremental merges saved bytes into doc; automerge-go panics on some
// malformed input, which becomes an error.
func loadIncremental(doc *automerge.Doc, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("automerge: %v", r)
		}
	}()
	return doc.LoadIncremental(data)
}

// Heads returns the heads of the device's copy of a document (none when
// it does not hold it), offline.
func (d *Device) Heads(doc string) ([]automerge.ChangeHash, error) {
	if err := checkID(doc); err != nil {
		return nil, err
	}
	if !d.store.has(doc) {
		return nil, nil
	}
	ad, _, err := d.store.loadDoc(doc)
	if err != nil {
		return nil, err
	}
	return ad.Heads(), nil
}
