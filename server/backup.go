package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/federation/replica"
	"github.com/circles-coop/circles/sync/store"
)

// The backup file (format version BackupVersion) is one file:
//
//	CIRCLES-BACKUP 1\n
//	{"type":"circle","circle_id":…,"name":…,"taken_at":…}\n
//	{"type":"key","size":N}\n          N bytes: the circle.key file
//	{"type":"file","name":"federation/…","size":N}\n
//	                                   N bytes: a file of DATA/federation (the
//	                                   circle's nkey, memberships, credentials)
//	… one file line per such file (none for a circle never federated) …
//	{"type":"stream","name":…,"config":…,"state":…,"size":N}\n
//	                                   N bytes: JetStream's snapshot of that stream
//	… one stream line per stream of the store (store.Streams), and the
//	  federation's stream (replica.StreamName) where it exists …
//	{"type":"end","frames":K,"sha256":HEX}\n
//
// HEX is the SHA-256 of every byte before the end line, so a truncated or
// altered file is refused before anything is restored.

// BackupVersion is the format version of the backups this circled writes
// and the only one it restores.
const BackupVersion = 1

const backupMagic = "CIRCLES-BACKUP"

// Errors Restore and VerifyBackup return for a file they refuse.
var (
	ErrNotBackup     = errors.New("not a circles backup file")
	ErrBackupVersion = errors.New("unsupported backup format version")
	ErrBackupCorrupt = errors.New("backup file is corrupt or truncated")
	ErrNotEmpty      = errors.New("restore needs a new or empty data directory")
)

// controlSocket, in the data directory, is the serving process's
// local-only control endpoint (HTTP over a Unix socket, mode 0600): `GET
// /v1/backup` streams a backup taken by the running server.
const controlSocket = "control.sock"

// maxSocketPath is the longest socket path used (sun_path holds 108 bytes
// with its terminating zero on Linux, 104 on the BSDs).
const maxSocketPath = 103

// BackupInfo describes a backup file.
type BackupInfo struct {
	CircleID string    `json:"circle_id"`
	Name     string    `json:"name"`
	TakenAt  time.Time `json:"taken_at"`
	Streams  int       `json:"streams"`
	Bytes    int64     `json:"bytes"`
	// Via says how it was taken: "server" (through the running server's
	// control socket) or "store" (the circle was not running; the store
	// was opened directly). Empty for a file read back.
	Via string `json:"via,omitempty"`
}

type backupFrame struct {
	Type     string          `json:"type"`
	CircleID string          `json:"circle_id,omitempty"`
	Name     string          `json:"name,omitempty"`
	TakenAt  *time.Time      `json:"taken_at,omitempty"`
	Config   json.RawMessage `json:"config,omitempty"`
	State    json.RawMessage `json:"state,omitempty"`
	Size     int64           `json:"size,omitempty"`
	Frames   int             `json:"frames,omitempty"`
	SHA256   string          `json:"sha256,omitempty"`
}

// backup is a backup file's content.
type backup struct {
	info    BackupInfo
	keyFile []byte
	// files are the files of DATA/federation, by their path relative to
	// the data directory ("federation/circle.nk").
	files   map[string][]byte
	streams []store.StreamSnapshot
}

// writeBackup writes b in the file format above.
func writeBackup(w io.Writer, b backup) (int64, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	frames := 0
	frame := func(f backupFrame, payload []byte) error {
		line, err := json.Marshal(f)
		if err != nil {
			return err
		}
		if _, err := cw.Write(append(line, '\n')); err != nil {
			return err
		}
		frames++
		_, err = cw.Write(payload)
		return err
	}
	if _, err := fmt.Fprintf(cw, "%s %d\n", backupMagic, BackupVersion); err != nil {
		return cw.n, err
	}
	taken := b.info.TakenAt.UTC()
	if err := frame(backupFrame{Type: "circle", CircleID: b.info.CircleID, Name: b.info.Name, TakenAt: &taken}, nil); err != nil {
		return cw.n, err
	}
	if err := frame(backupFrame{Type: "key", Size: int64(len(b.keyFile))}, b.keyFile); err != nil {
		return cw.n, err
	}
	for _, name := range slices.Sorted(maps.Keys(b.files)) {
		if err := frame(backupFrame{Type: "file", Name: name, Size: int64(len(b.files[name]))}, b.files[name]); err != nil {
			return cw.n, err
		}
	}
	for _, s := range b.streams {
		f := backupFrame{Type: "stream", Name: s.Name, Config: s.Config, State: s.State, Size: int64(len(s.Data))}
		if err := frame(f, s.Data); err != nil {
			return cw.n, err
		}
	}
	end, _ := json.Marshal(backupFrame{Type: "end", Frames: frames, SHA256: hex.EncodeToString(h.Sum(nil))})
	n, err := w.Write(append(end, '\n'))
	return cw.n + int64(n), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxFrameLine bounds one frame line (a stream's config and state are a
// few kB).
const maxFrameLine = 1 << 20

// readBackup reads and checks a whole backup of size bytes (payloads are
// never trusted to be smaller than the file). Nothing is returned unless
// the format, the version and the checksum are right.
func readBackup(r io.Reader, size int64) (*backup, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h := sha256.New()
	var read int64
	readLine := func() ([]byte, error) {
		var line []byte
		for {
			part, err := br.ReadSlice('\n')
			line = append(line, part...)
			if len(line) > maxFrameLine {
				return nil, fmt.Errorf("%w: a frame line longer than %d bytes at byte %d", ErrBackupCorrupt, maxFrameLine, read)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				return nil, fmt.Errorf("%w: it ends at byte %d without its end marker", ErrBackupCorrupt, read+int64(len(line)))
			}
			if err != nil {
				return nil, err
			}
			read += int64(len(line))
			return line, nil
		}
	}

	first, err := br.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(first, []byte(backupMagic+" ")) {
		return nil, ErrNotBackup
	}
	read += int64(len(first))
	h.Write(first)
	v, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(first), backupMagic+" ")))
	if err != nil {
		return nil, ErrNotBackup
	}
	if v != BackupVersion {
		return nil, fmt.Errorf("%w: the file is version %d, this circled restores version %d", ErrBackupVersion, v, BackupVersion)
	}

	b := &backup{}
	frames := 0
	var sawCircle, sawKey bool
	for {
		line, err := readLine()
		if err != nil {
			return nil, err
		}
		var f backupFrame
		if err := json.Unmarshal(line, &f); err != nil {
			return nil, fmt.Errorf("%w: bad frame line at byte %d", ErrBackupCorrupt, read-int64(len(line)))
		}
		if f.Type == "end" {
			if sum := hex.EncodeToString(h.Sum(nil)); f.SHA256 != sum {
				return nil, fmt.Errorf("%w: checksum mismatch (the file says %.16s…, its content is %.16s…)", ErrBackupCorrupt, f.SHA256, sum)
			}
			if f.Frames != frames {
				return nil, fmt.Errorf("%w: %d frames, the end marker says %d", ErrBackupCorrupt, frames, f.Frames)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				return nil, fmt.Errorf("%w: data after the end marker", ErrBackupCorrupt)
			}
			break
		}
		h.Write(line)
		frames++
		if f.Size < 0 || f.Size > size-read {
			return nil, fmt.Errorf("%w: a %s frame of %d bytes at byte %d, past the end of the file", ErrBackupCorrupt, f.Type, f.Size, read)
		}
		payload := make([]byte, f.Size)
		if _, err := io.ReadFull(br, payload); err != nil {
			return nil, fmt.Errorf("%w: it ends inside a %s frame", ErrBackupCorrupt, f.Type)
		}
		read += f.Size
		h.Write(payload)
		switch f.Type {
		case "circle":
			b.info.CircleID, b.info.Name = f.CircleID, f.Name
			if f.TakenAt != nil {
				b.info.TakenAt = *f.TakenAt
			}
			sawCircle = true
		case "key":
			b.keyFile, sawKey = payload, true
		case "file":
			if !backupFileName(f.Name) || b.files[f.Name] != nil {
				return nil, fmt.Errorf("%w: file %q is not one a backup holds, or comes twice", ErrBackupCorrupt, f.Name)
			}
			if b.files == nil {
				b.files = map[string][]byte{}
			}
			b.files[f.Name] = payload
		case "stream":
			b.streams = append(b.streams, store.StreamSnapshot{Name: f.Name, Config: f.Config, State: f.State, Data: payload})
		default:
			return nil, fmt.Errorf("%w: unknown frame type %q", ErrBackupCorrupt, f.Type)
		}
	}
	// The checksum held, so what follows are a writer's mistakes, not damage.
	if !sawCircle || !sawKey {
		return nil, fmt.Errorf("%w: no circle or no key in it", ErrBackupCorrupt)
	}
	if _, err := parseKey(b.keyFile); err != nil {
		return nil, fmt.Errorf("%w: its circle key: %v", ErrBackupCorrupt, err)
	}
	want := map[string]bool{}
	for _, n := range store.Streams() {
		want[n] = true
	}
	optional := map[string]bool{replica.StreamName: true}
	for _, s := range b.streams {
		switch {
		case want[s.Name]:
			delete(want, s.Name)
		case optional[s.Name]:
			delete(optional, s.Name)
		default:
			return nil, fmt.Errorf("%w: stream %q is not one of the store's, or comes twice", ErrBackupCorrupt, s.Name)
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("%w: %d of the store's streams are missing", ErrBackupCorrupt, len(want))
	}
	b.info.Streams, b.info.Bytes = len(b.streams), size
	return b, nil
}

// VerifyBackup reads the backup file at path and checks it whole: format,
// version, checksum and that it holds a circle key and every stream.
// Errors: ErrNotBackup, ErrBackupVersion, ErrBackupCorrupt.
func VerifyBackup(path string) (BackupInfo, error) {
	b, err := readBackupFile(path)
	if err != nil {
		return BackupInfo{}, err
	}
	return b.info, nil
}

func readBackupFile(path string) (*backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := readBackup(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// takeBackup snapshots st (Store.Snapshot: consistent, every acknowledged
// write in it) into a backup with the circle's key file.
func takeBackup(ctx context.Context, st *store.Store, dataDir string, now time.Time) (backup, error) {
	keyFile, err := os.ReadFile(filepath.Join(dataDir, keyFile))
	if err != nil {
		return backup{}, fmt.Errorf("read circle key: %w", err)
	}
	key, err := parseKey(keyFile)
	if err != nil {
		return backup{}, err
	}
	meta, err := authority.ReadMeta(ctx, st, key)
	if err != nil {
		return backup{}, err
	}
	files, err := readFederationFiles(dataDir)
	if err != nil {
		return backup{}, err
	}
	snaps, err := st.Snapshot(ctx, replica.StreamName)
	if err != nil {
		return backup{}, err
	}
	return backup{
		info:    BackupInfo{CircleID: meta.ID, Name: meta.Name, TakenAt: now.UTC(), Streams: len(snaps)},
		keyFile: keyFile,
		files:   files,
		streams: snaps,
	}, nil
}

// maxBackupFile bounds one file of DATA/federation in a backup (an nkey,
// credentials, the memberships: a few kB).
const maxBackupFile = 1 << 20

// readFederationFiles reads the regular files of DATA/federation (the
// circle's nkey, its memberships and credentials: package
// federation/link). Without them a restored circle would make a new nkey,
// and its hubs, which bind a circle id to the nkey it joined with, would
// refuse it.
func readFederationFiles(dataDir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, federationDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", federationDir, err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := federationDir + "/" + e.Name()
		if !e.Type().IsRegular() || !backupFileName(name) {
			continue // the link's temporary files, anything not its own
		}
		b, err := os.ReadFile(filepath.Join(dataDir, federationDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(b) > maxBackupFile {
			return nil, fmt.Errorf("%s is %d bytes, more than a backup holds (%d)", name, len(b), maxBackupFile)
		}
		files[name] = b
	}
	return files, nil
}

// backupFileName reports whether name is a file a backup may hold and a
// restore may write: directly in DATA/federation, a plain name.
func backupFileName(name string) bool {
	base, ok := strings.CutPrefix(name, federationDir+"/")
	if !ok || base == "" || base == "." || base == ".." || len(base) > 100 || strings.HasPrefix(base, ".") {
		return false
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// serveControl serves the control socket until Close.
func (s *Server) serveControl() error {
	path := filepath.Join(s.cfg.DataDir, controlSocket)
	if len(path) > maxSocketPath {
		// The kernel limits a socket's path (108 bytes on Linux). Serve
		// anyway: only a backup while serving is lost, and it says why.
		s.log.Warn("no control socket: the data directory's path is too long; stop the circle to back it up",
			"path", path, "limit", maxSocketPath)
		return nil
	}
	// A socket left by a killed server: this process holds the data
	// directory's lock, so nobody else is listening on it.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/backup", s.handleBackup)
	s.ctlSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.ctlSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control socket stopped", "err", err)
		}
	}()
	return nil
}

func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The devices' sync states are written once a second; write what is
	// pending so the backup holds them up to now. If that fails the backup
	// goes on: a sync state a restored circle lacks costs its device one
	// more round trip, nothing else.
	if err := s.engine.FlushSyncStates(r.Context()); err != nil {
		s.log.Warn("backup: flush sync states", "err", err)
	}
	b, err := takeBackup(r.Context(), s.store, s.cfg.DataDir, s.cfg.Now())
	if err != nil {
		s.log.Error("backup", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	taken := time.Since(start)
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := writeBackup(w, b)
	if err != nil {
		s.log.Warn("backup: sending failed", "err", err, "bytes", n)
		return
	}
	s.log.Info("backup taken", "bytes", n, "snapshot_ms", taken.Milliseconds(), "total_ms", time.Since(start).Milliseconds())
}

// BackupFile writes a backup of the circle in dataDir to the file out
// (mode 0600: it holds the circle's private key). If a server is serving
// dataDir, it takes the backup through the server's control socket, while
// the circle goes on serving; otherwise it opens the store itself, holding
// the data directory's lock so no server starts meanwhile. The file is
// written beside out, read back and checked, then renamed to out, so out
// is either the previous file or a whole, verified backup.
func BackupFile(ctx context.Context, dataDir, out string, logger *slog.Logger) (BackupInfo, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dataDir, keyFile)); err != nil {
		return BackupInfo{}, fmt.Errorf("%s holds no circle (no %s)", dataDir, keyFile)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.partial")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return BackupInfo{}, err
	}
	via := "store"
	unlock, err := lockData(dataDir)
	switch {
	case errors.Is(err, ErrLocked):
		via = "server"
		err = backupFromServer(ctx, dataDir, tmp)
	case err != nil:
	default:
		err = backupFromStore(ctx, dataDir, tmp, logger)
		unlock()
	}
	if err != nil {
		return BackupInfo{}, err
	}
	if err := tmp.Sync(); err != nil {
		return BackupInfo{}, err
	}
	info, err := VerifyBackup(tmp.Name())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the backup just written does not verify: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return BackupInfo{}, fmt.Errorf("backup file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	info.Via = via
	return info, nil
}

func backupFromServer(ctx context.Context, dataDir string, w io.Writer) error {
	sock := filepath.Join(dataDir, controlSocket)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://circled/v1/backup", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the circle in %s is being served, but its control socket does not answer (a server whose data directory path is over %d bytes has none: stop it to back up): %w", dataDir, maxSocketPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the server refused the backup: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receive backup: %w", err)
	}
	return nil
}

func backupFromStore(ctx context.Context, dataDir string, w io.Writer, logger *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(dataDir, "nats")); err != nil {
		return fmt.Errorf("%s has no embedded store (a circle kept on an external NATS cluster is backed up while it is served)", dataDir)
	}
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: filepath.Join(dataDir, "nats"), Logger: logger})
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	defer n.Close()
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	b, err := takeBackup(ctx, st, dataDir, time.Now())
	if err != nil {
		return err
	}
	_, err = writeBackup(w, b)
	return err
}

// Restore creates the circle of the backup file in into dataDir, which
// must not exist or be empty (ErrNotEmpty). The file is read and checked
// whole first (ErrNotBackup, ErrBackupVersion, ErrBackupCorrupt), so a
// refused file changes nothing. Every stream comes back through
// JetStream's restore API as it was (sequences, KV revisions: devices'
// sync states, invites, the circle's metadata); the circle key is written
// last, as by Init, marking a finished restore. If the restore fails
// midway, what it wrote is removed again.
func Restore(ctx context.Context, dataDir, in string, logger *slog.Logger) (BackupInfo, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dataDir == "" {
		return BackupInfo{}, errors.New("a data directory is required (--data DIR)")
	}
	created := false
	switch entries, err := os.ReadDir(dataDir); {
	case errors.Is(err, os.ErrNotExist):
		created = true
	case err != nil:
		return BackupInfo{}, fmt.Errorf("data directory: %w", err)
	case len(entries) > 0:
		return BackupInfo{}, fmt.Errorf("%s is not empty: %w", dataDir, ErrNotEmpty)
	}
	b, err := readBackupFile(in)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return BackupInfo{}, fmt.Errorf("create data directory: %w", err)
	}
	ok := false
	defer func() {
		if ok {
			return
		}
		if created {
			os.RemoveAll(dataDir)
			return
		}
		for _, name := range []string{"nats", keyFile, federationDir, lockFile} {
			os.RemoveAll(filepath.Join(dataDir, name))
		}
	}()
	unlock, err := lockData(dataDir)
	if err != nil {
		return BackupInfo{}, err
	}
	defer unlock()
	if err := restoreStore(ctx, dataDir, b, logger); err != nil {
		return BackupInfo{}, err
	}
	if len(b.files) > 0 {
		if err := os.MkdirAll(filepath.Join(dataDir, federationDir), 0o700); err != nil {
			return BackupInfo{}, fmt.Errorf("restore %s: %w", federationDir, err)
		}
	}
	for name, data := range b.files {
		if err := writeFileSync(filepath.Join(dataDir, filepath.FromSlash(name)), data, 0o600); err != nil {
			return BackupInfo{}, fmt.Errorf("restore %s: %w", name, err)
		}
	}
	if err := writeFileSync(filepath.Join(dataDir, keyFile), b.keyFile, 0o600); err != nil {
		return BackupInfo{}, fmt.Errorf("write circle key: %w", err)
	}
	ok = true
	return b.info, nil
}

func restoreStore(ctx context.Context, dataDir string, b *backup, logger *slog.Logger) error {
	// Every write is fsynced: the restore is over only when it is on disk.
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: filepath.Join(dataDir, "nats"), Logger: logger, SyncAlways: true})
	if err != nil {
		return fmt.Errorf("start the store: %w", err)
	}
	defer n.Close()
	if err := store.RestoreStreams(ctx, n.JetStream(), b.streams, 1); err != nil {
		return err
	}
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		return fmt.Errorf("open the restored store: %w", err)
	}
	key, err := parseKey(b.keyFile)
	if err != nil {
		return err
	}
	meta, err := authority.ReadMeta(ctx, st, key)
	if err != nil {
		return fmt.Errorf("the restored store: %w", err)
	}
	if meta.ID != b.info.CircleID {
		return fmt.Errorf("the restored store holds circle %s, the backup names %s", meta.ID, b.info.CircleID)
	}
	return n.Close()
}

func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseKey decodes the circle.key file format (base64 of the Ed25519
// seed).
func parseKey(b []byte) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("not a circle key")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
