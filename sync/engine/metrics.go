package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus instruments.
type Metrics struct {
	accepted     prometheus.Counter
	rejected     prometheus.Counter
	loads        prometheus.Counter
	evictions    prometheus.Counter
	compactions  prometheus.Counter
	loadedBytes  prometheus.Gauge
	syncSeconds  prometheus.Histogram
	storeSeconds prometheus.Histogram
	loadSeconds  prometheus.Histogram
	outsideBytes prometheus.Gauge
	reclaims     *prometheus.CounterVec
	trims        prometheus.Counter // reclaim.go, quiet.go
	inSync       prometheus.Counter // snapshots.go
	// live.go and outside.go
	liveDocs   prometheus.Gauge
	loadedDocs prometheus.Gauge
	cHeapInUse prometheus.Gauge
	cHeapFree  prometheus.Gauge
	memScale   prometheus.Gauge
	finalQueue prometheus.Gauge
}

// NewMetrics creates the engine's metrics and registers them with reg
// (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_changes_accepted_total", Help: "Automerge changes accepted and stored."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_messages_rejected_total", Help: "Sync messages refused by a write rule (nothing of their request applied)."}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_doc_loads_total", Help: "Documents loaded from the store into memory."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_doc_evictions_total", Help: "Idle documents dropped from memory to stay under the budget."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_compactions_total", Help: "Snapshots written (older chunks purged)."}),
		loadedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_sync_loaded_bytes", Help: "Estimated memory of loaded documents."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "circles_sync_request_seconds", Help: "Time to handle one batch of sync messages.", Buckets: buckets}),
		storeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "circles_store_write_seconds", Help: "Time until the store acknowledged a batch of chunks.", Buckets: buckets}),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "circles_sync_doc_load_seconds", Help: "Time to load one document from the store.", Buckets: buckets}),
		outsideBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_process_outside_go_bytes", Help: "Resident memory the Go runtime does not account for: automerge's C memory, mostly."}),
		reclaims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circles_sync_reclaims_total", Help: "Reclaims of automerge's C memory the engine asked for (a garbage collection, unless two ran since, then a trim at most every 2 s while documents are loaded), by why: after evictions (evicted), because memory outside the Go heap grew (outside_growth), or after a quiet spell (quiet)."}, []string{"reason"}),
		trims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_c_trims_total", Help: "Times the engine handed the C heap's free pages back to the system (malloc_trim)."}),
		inSync: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "circles_sync_in_sync_answers_total", Help: "Sync messages answered from a stored snapshot's heads, without loading the document."}),
		liveDocs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_sync_live_docs", Help: "Automerge documents the engine created or loaded that the Go runtime has not collected yet (each holds its C memory)."}),
		loadedDocs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_sync_loaded_docs", Help: "Documents the engine holds loaded."}),
		cHeapInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_process_c_heap_bytes", Help: "C heap allocated now (glibc mallinfo2 uordblks+hblkhd): automerge's documents, sync states and results."}),
		cHeapFree: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_process_c_heap_free_bytes", Help: "C heap freed but kept by malloc (glibc mallinfo2 fordblks)."}),
		memScale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_sync_memory_scale", Help: "Measured C heap per estimated byte of loaded documents; eviction counts loaded documents at their estimate times this."}),
		finalQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circles_process_finalizer_queue", Help: "Finalizers and cleanups queued by the Go runtime and not run yet: automerge-go frees C memory in finalizers, one at a time."}),
	}
	if reg != nil {
		reg.MustRegister(m.liveDocs, m.loadedDocs, m.cHeapInUse, m.cHeapFree, m.memScale, m.finalQueue)
		reg.MustRegister(m.accepted, m.rejected, m.loads, m.evictions, m.compactions,
			m.loadedBytes, m.syncSeconds, m.storeSeconds, m.loadSeconds, m.outsideBytes, m.reclaims, m.trims, m.inSync)
	}
	return m
}
