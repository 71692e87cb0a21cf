package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results holds every trial: workload name → implementation → one result
// per trial.
type results map[string]map[string][]result

// run measures every workload of cfg against every implementation, trial by
// trial, with the implementations' order rotated from one trial to the
// next, and writes the report to out and progress to progress.
func run(cfg *config, out, progress io.Writer) (results, error) {
	ws, err := workloads(cfg)
	if err != nil {
		return nil, err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raising the open-file limit: %w", err)
	}
	need := max(cfg.IdleConns, cfg.EchoConns, cfg.MgmtConns) + 64
	for _, n := range cfg.Fanout {
		need = max(need, n+64)
	}
	if limit < uint64(need) {
		return nil, fmt.Errorf("the open-file limit is %d, and %d connections need about %d: raise the hard limit (ulimit -Hn)", limit, need-64, need)
	}
	if lo, hi, ok := portRange(); ok && hi-lo+1 < need {
		return nil, fmt.Errorf("the ephemeral port range %d–%d has fewer ports than the %d connections need (sysctl net.ipv4.ip_local_port_range)", lo, hi, need-64)
	}
	if cfg.CPUProfileDir != "" {
		if err := os.MkdirAll(cfg.CPUProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	env := environment(limit)
	res := results{}
	started := time.Now()
	for t := range cfg.Trials {
		for _, w := range ws {
			if res[w.name] == nil {
				res[w.name] = map[string][]result{}
			}
			order := slices.Concat(w.impls[t%len(w.impls):], w.impls[:t%len(w.impls)])
			for _, impl := range order {
				profile := ""
				if cfg.CPUProfileDir != "" {
					profile = filepath.Join(cfg.CPUProfileDir, fmt.Sprintf("%s-%s-%d.pprof", w.name, impl, t+1))
				}
				t0 := time.Now()
				r, err := w.run(cfg, impl, profile)
				if err == nil {
					err = serverFailure()
				}
				if err != nil {
					return nil, fmt.Errorf("trial %d, %s, %s: %w", t+1, w.name, impl, err)
				}
				res[w.name][impl] = append(res[w.name][impl], r)
				fmt.Fprintf(progress, "trial %d/%d %-10s %-14s %s (%.1fs)\n", t+1, cfg.Trials, w.name, impl, r.String(w.metrics), time.Since(t0).Seconds())
			}
		}
	}
	fmt.Fprintf(out, "%s- Load average at the end: %s; the run took %s.\n\n", env, loadavg(), time.Since(started).Round(time.Second))
	for _, w := range ws {
		writeTable(out, w, res[w.name], cfg.Trials)
	}
	return res, nil
}

func (r result) String(ms []metric) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s=%s ", m.key, format(r[m.key], m.prec))
	}
	return strings.TrimSpace(b.String())
}

// environment describes the run, for the report's head.
func environment(fileLimit uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Go: %s %s/%s; GOMAXPROCS %d (the servers inherit it), %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, gomaxprocs(), runtime.NumCPU())
	fmt.Fprintf(&b, "- CPU: %s\n", cpuModel())
	ports := "unknown"
	if lo, hi, ok := portRange(); ok {
		ports = fmt.Sprintf("%d–%d", lo, hi)
	}
	fmt.Fprintf(&b, "- Open-file limit %d; ephemeral ports %s; loopback only\n", fileLimit, ports)
	fmt.Fprintf(&b, "- Command: `%s`\n", strings.Join(append([]string{"bench"}, os.Args[1:]...), " "))
	fmt.Fprintf(&b, "- Load average at the start: %s\n", loadavg())
	return b.String()
}

// portRange reads Linux's ephemeral port range.
func portRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// median of xs; NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// values of one metric over the trials.
func values(rs []result, key string) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r[key]
	}
	return out
}

// pairRatios divides a's value by b's, trial by trial.
func pairRatios(a, b []result, key string) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for i := range n {
		out[i] = a[i][key] / b[i][key]
	}
	return out
}

// format prints v with prec decimals, thousands separated when prec is 0.
func format(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec != 0 || math.Abs(v) < 10000 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

func writeTable(out io.Writer, w workload, rs map[string][]result, trials int) {
	ref := w.impls[0]
	fmt.Fprintf(out, "### %s\n\n%s. Median of %d trials; in brackets the median of the per-trial ratios server ÷ %s.\n\n", w.name, w.title, trials, ref)
	fmt.Fprint(out, "| server |")
	for _, m := range w.metrics {
		fmt.Fprintf(out, " %s |", m.title)
	}
	fmt.Fprint(out, "\n|---|")
	for range w.metrics {
		fmt.Fprint(out, "---:|")
	}
	fmt.Fprintln(out)
	for _, impl := range w.impls {
		fmt.Fprintf(out, "| %s |", implTitle(w, impl))
		for _, m := range w.metrics {
			cell := format(median(values(rs[impl], m.key)), m.prec)
			if impl != ref && !m.noRatio {
				cell += " (" + ratio(median(pairRatios(rs[impl], rs[ref], m.key))) + ")"
			}
			fmt.Fprintf(out, " %s |", cell)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out)
	if w.floor != "" && rs[w.floor] != nil {
		fmt.Fprintf(out, "%s ÷ %s (the transport's floor), trial by trial:\n\n| trial |", ref, w.floor)
		ms := slices.DeleteFunc(slices.Clone(w.metrics), func(m metric) bool { return m.noRatio })
		for _, m := range ms {
			fmt.Fprintf(out, " %s |", m.title)
		}
		fmt.Fprint(out, "\n|---|")
		for range ms {
			fmt.Fprint(out, "---:|")
		}
		fmt.Fprintln(out)
		for t := range trials {
			fmt.Fprintf(out, "| %d |", t+1)
			for _, m := range ms {
				fmt.Fprintf(out, " %s |", ratio(pairRatios(rs[ref][t:t+1], rs[w.floor][t:t+1], m.key)[0]))
			}
			fmt.Fprintln(out)
		}
		fmt.Fprint(out, "| median |")
		for _, m := range ms {
			fmt.Fprintf(out, " **%s** |", ratio(median(pairRatios(rs[ref], rs[w.floor], m.key))))
		}
		fmt.Fprint(out, "\n\n")
	}
	m := w.metrics[0]
	fmt.Fprintf(out, "Per-trial pair ratios %s ÷ server, %s:\n\n| server |", ref, m.title)
	for t := range trials {
		fmt.Fprintf(out, " trial %d |", t+1)
	}
	fmt.Fprint(out, " median |\n|---|")
	for range trials + 1 {
		fmt.Fprint(out, "---:|")
	}
	fmt.Fprintln(out)
	for _, impl := range w.impls[1:] {
		fmt.Fprintf(out, "| %s |", implTitle(w, impl))
		pr := pairRatios(rs[ref], rs[impl], m.key)
		for _, v := range pr {
			fmt.Fprintf(out, " %s |", ratio(v))
		}
		fmt.Fprintf(out, " %s |\n", ratio(median(pr)))
	}
	fmt.Fprintln(out)
}

// implTitle names impl in w's table, with what distinguishes it there.
func implTitle(w workload, impl string) string {
	fanout := strings.HasPrefix(w.name, "fanout")
	switch {
	case impl == w.floor && fanout:
		return impl + " (detached loop, floor; GOMAXPROCS writers)"
	case impl == w.floor:
		return impl + " (detached loop, floor)"
	case impl == "coder-naive" && fanout:
		return "coder-naive (loop in handler; GOMAXPROCS writers)"
	case impl == "coder-naive":
		return "coder-naive (loop in handler, r.Context())"
	case impl == "wsroute" && fanout:
		return "wsroute (Broadcast: one group post)"
	case impl == "gorilla" && fanout:
		return "gorilla (GOMAXPROCS writers, PreparedMessage)"
	case impl == "melody" && fanout:
		return "melody (Broadcast)"
	}
	return impl
}
