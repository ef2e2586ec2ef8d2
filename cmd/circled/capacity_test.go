//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/mobile-api/client"
)

// BenchmarkCapacity measures what a circle costs on one host, for
// docs/CAPACITY.md: CAPACITY_N (default 8) circles, each its own `circled
// serve` process, first idle (served, nobody writing) and then after each
// had capacityWrites REST ledger writes (active). For each process it
// reads VmRSS and VmHWM (/proc/PID/status) and the CPU time it used
// (/proc/PID/stat) in an idle window of capacityIdle. It does this with
// the embedded nats-server (the default), and in cluster mode: three
// nats-server processes on loopback, one NATS account per circle
// (the store's stream names are fixed, so one circle per account),
// --replicas 3; there it also reads the nats-servers' RSS before the
// circles, with them idle and after the load.
//
//	make capacity CAPACITY_N=8
func BenchmarkCapacity(b *testing.B) {
	n := 8
	if v, err := strconv.Atoi(os.Getenv("CAPACITY_N")); err == nil && v > 0 && v <= 64 {
		n = v
	}
	bin, natsBin := buildCircled(b), buildNATSServer(b)
	b.Run("embedded", func(b *testing.B) {
		for range b.N {
			measureCircles(b, bin, n, nil, nil)
		}
	})
	b.Run("cluster-R3", func(b *testing.B) {
		for range b.N {
			nodes := startAccountCluster(b, natsBin, n)
			urls := func(i int) []string {
				var us []string
				for _, nd := range nodes {
					us = append(us, fmt.Sprintf("nats://c%d:pw%d@127.0.0.1:%d", i, i, nd.port))
				}
				return []string{"--nats-url", strings.Join(us, ","), "--replicas", "3"}
			}
			measureCircles(b, bin, n, urls, nodes)
		}
	})
}

const (
	capacityWrites = 1000
	capacityIdle   = 10 * time.Second
)

// procStat is one process's memory (KiB) and CPU time. RSS counts the
// binary's pages, which all circled processes share through the page
// cache (about 25 MiB of circled's 30 MiB idle RSS); PSS divides shared
// pages among their sharers; anon is the process's own memory, what one
// more circle costs.
type procStat struct {
	rss, hwm, pss, anon int64
	cpu                 time.Duration
}

func readProc(pid int) (procStat, error) {
	var st procStat
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			st.rss = v
		case "VmHWM:":
			st.hwm = v
		}
	}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(rollup), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Pss:":
			st.pss = v
		case "Anonymous:":
			st.anon = v
		}
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command (which is in parentheses): utime is the
	// 14th field of the line, stime the 15th, in clock ticks (100/s).
	rest := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(rest[11], 10, 64)
	stt, _ := strconv.ParseInt(rest[12], 10, 64)
	st.cpu = time.Duration(ut+stt) * 10 * time.Millisecond
	return st, nil
}

// sumRSS is the total VmRSS (KiB) of the processes.
func sumRSS(b *testing.B, pids []int) int64 {
	var total int64
	for _, pid := range pids {
		st, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		total += st.rss
	}
	return total
}

// measureCircles runs n circles (extra(i) gives circle i's extra flags;
// nil: embedded) and prints and reports their memory and CPU, idle and
// active.
func measureCircles(b *testing.B, bin string, n int, extra func(i int) []string, nodes []*natsNode) {
	mode := "embedded"
	var nodePIDs []int
	for _, nd := range nodes {
		nodePIDs = append(nodePIDs, nd.cmd.Process.Pid)
	}
	if nodes != nil {
		mode = "cluster-R3"
	}
	var natsBase int64
	var natsBaseCPU float64
	if nodes != nil {
		natsBase = sumRSS(b, nodePIDs)
		natsBaseCPU = window(b, nil, nodePIDs).nodesCPUPct
	}
	procs := make([]*proc, n)
	invites := make([]string, n)
	for i := range n {
		var args []string
		if extra != nil {
			args = extra(i)
		}
		data := filepath.Join(b.TempDir(), "circle")
		invites[i] = initCircle(b, bin, data, args...)
		p, err := serve(bin, data, "127.0.0.1:0", args...)
		if err != nil {
			b.Fatal(err)
		}
		defer p.stop()
		procs[i] = p
	}
	pids := make([]int, n)
	for i, p := range procs {
		pids[i] = p.cmd.Process.Pid
	}
	idle := window(b, pids, nodePIDs)
	var natsIdle int64
	if nodes != nil {
		natsIdle = sumRSS(b, nodePIDs)
	}

	// Active: every circle gets a member and capacityWrites ledger writes,
	// all circles at once.
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev, err := client.Join(ctx, b.TempDir(), "http://"+p.addr, invites[i], "Member", "phone")
			if err != nil {
				errs[i] = err
				return
			}
			cl, _ := dev.Client()
			_, errs[i] = writeBurst(ctx, cl, 2, capacityWrites)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	active := window(b, pids, nodePIDs)
	var natsActive int64
	if nodes != nil {
		natsActive = sumRSS(b, nodePIDs)
	}

	mib := func(kib float64) float64 { return kib / 1024 }
	fmt.Printf("capacity %s: %d circles, one circled process each\n", mode, n)
	fmt.Printf("  idle:   circled RSS mean %.1f MiB (max %.1f), PSS %.1f MiB, anonymous %.1f MiB; CPU %.2f%% of a core per circle\n",
		mib(idle.meanRSS), mib(idle.maxRSS), mib(idle.meanPSS), mib(idle.meanAnon), idle.cpuPct)
	fmt.Printf("  active: circled RSS mean %.1f MiB (max %.1f), PSS %.1f MiB, anonymous %.1f MiB after %d writes each, peak (VmHWM) mean %.1f MiB (max %.1f); CPU when idle again %.2f%%\n",
		mib(active.meanRSS), mib(active.maxRSS), mib(active.meanPSS), mib(active.meanAnon), capacityWrites, mib(active.meanHWM), mib(active.maxHWM), active.cpuPct)
	if nodes != nil {
		fmt.Printf("  nats-server (3 nodes together): %.1f MiB before, %.1f MiB with the circles idle (+%.2f MiB per circle), %.1f MiB after the writes (+%.2f MiB per circle)\n",
			mib(float64(natsBase)), mib(float64(natsIdle)), mib(float64(natsIdle-natsBase)/float64(n)),
			mib(float64(natsActive)), mib(float64(natsActive-natsBase)/float64(n)))
		fmt.Printf("  nats-server CPU (3 nodes together, %% of one core): %.2f%% before the circles, %.2f%% with the circles idle, %.2f%% idle again after the writes\n", natsBaseCPU, idle.nodesCPUPct, active.nodesCPUPct)
		b.ReportMetric((idle.nodesCPUPct-natsBaseCPU)/float64(n), "nats-cpu%/idle-circle")
		b.ReportMetric(mib(float64(natsIdle-natsBase)/float64(n)), "nats-MiB/idle-circle")
		b.ReportMetric(mib(float64(natsActive-natsBase)/float64(n)), "nats-MiB/active-circle")
	}
	b.ReportMetric(mib(idle.meanAnon), "anon-MiB/idle-circle")
	b.ReportMetric(mib(active.meanAnon), "anon-MiB/active-circle")
	b.ReportMetric(mib(idle.meanRSS), "MiB/idle-circle")
	b.ReportMetric(mib(active.meanRSS), "MiB/active-circle")
	b.ReportMetric(mib(active.meanHWM), "peak-MiB/active-circle")
	b.ReportMetric(idle.cpuPct, "idle-cpu%/circle")
}

// windowStats are the processes' memory at the end of an idle window
// and their CPU use during it.
type windowStats struct {
	meanRSS, maxRSS, meanHWM, maxHWM float64 // KiB
	meanPSS, meanAnon                float64 // KiB
	cpuPct                           float64 // of one core, per process
	nodesCPUPct                      float64 // of one core, the nodes together
}

// window waits capacityIdle and measures the processes over it, and the
// CPU the nodes (nats-servers) used meanwhile.
func window(b *testing.B, pids, nodes []int) windowStats {
	before := make([]procStat, len(pids)+len(nodes))
	for i, pid := range append(slices.Clone(pids), nodes...) {
		st, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		before[i] = st
	}
	time.Sleep(capacityIdle)
	var ws windowStats
	var cpu time.Duration
	for i, pid := range pids {
		st, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		ws.meanRSS += float64(st.rss)
		ws.meanHWM += float64(st.hwm)
		ws.meanPSS += float64(st.pss)
		ws.meanAnon += float64(st.anon)
		ws.maxRSS = max(ws.maxRSS, float64(st.rss))
		ws.maxHWM = max(ws.maxHWM, float64(st.hwm))
		cpu += st.cpu - before[i].cpu
	}
	var nodesCPU time.Duration
	for i, pid := range nodes {
		st, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		nodesCPU += st.cpu - before[len(pids)+i].cpu
	}
	ws.nodesCPUPct = 100 * nodesCPU.Seconds() / capacityIdle.Seconds()
	if len(pids) == 0 {
		return ws
	}
	n := float64(len(pids))
	ws.meanRSS /= n
	ws.meanHWM /= n
	ws.meanPSS /= n
	ws.meanAnon /= n
	ws.cpuPct = 100 * cpu.Seconds() / capacityIdle.Seconds() / n
	return ws
}

// startAccountCluster runs three nats-server processes clustered on
// loopback with n accounts C0..Cn-1 (user ci, password pwi, JetStream
// enabled), so n circles share the cluster, one account each.
func startAccountCluster(b *testing.B, bin string, n int) []*natsNode {
	ports := freePorts(b, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	var accounts strings.Builder
	for i := range n {
		fmt.Fprintf(&accounts, "  C%d: { jetstream: enabled, users: [ { user: c%d, password: pw%d } ] }\n", i, i, i)
	}
	var nodes []*natsNode
	for i := range 3 {
		dir := b.TempDir()
		conf := filepath.Join(dir, "nats.conf")
		text := fmt.Sprintf("server_name: node%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\ncluster { name: circles-capacity, listen: 127.0.0.1:%d, routes: [ %s ] }\naccounts {\n%s}\n",
			i, ports[i], filepath.Join(dir, "js"), ports[3+i], strings.Join(routes, ", "), accounts.String())
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		nd := &natsNode{bin: bin, name: fmt.Sprintf("node%d", i), port: ports[i], conf: conf}
		nd.start(b)
		b.Cleanup(nd.kill)
		nodes = append(nodes, nd)
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://c0:pw0@127.0.0.1:%d", ports[0]))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nodes
		}
		if time.Now().After(deadline) {
			b.Fatalf("JetStream cluster with accounts not ready in 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
