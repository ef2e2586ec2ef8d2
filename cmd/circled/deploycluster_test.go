package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDeployClusterCompose: deploy/compose-cluster.yaml's two circled
// services are valid `circled serve` settings (the same reader as serve,
// fed each service's command and environment) and match the failover
// design: both in failover mode on the same three-node cluster at
// --replicas 3, with different instance names and advertised URLs, the
// circle key from the one file init writes, a data volume each; init
// creates the circle on the same cluster.
func TestDeployClusterCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose-cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			StopSignal  string            `yaml:"stop_signal"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	image := map[string]string{"CIRCLED_DATA": "/var/lib/circled", "CIRCLED_LISTEN": "0.0.0.0:8080"} // deploy/Dockerfile's ENV
	var urls, instances, adverts []string
	for _, name := range []string{"circled-a", "circled-b"} {
		svc, ok := file.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if len(svc.Command) == 0 || svc.Command[0] != "serve" {
			t.Fatalf("%s: command %v, want serve …", name, svc.Command)
		}
		env := func(k string) string {
			if v, ok := svc.Environment[k]; ok {
				return v
			}
			return image[k]
		}
		st, err := serveSettings(svc.Command[1:], env, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !st.Failover || st.Replicas != 3 || st.NATSURL == "" || st.Instance == "" || st.Advertise == "" {
			t.Fatalf("%s: settings %+v: want failover on a cluster at 3 replicas, an instance name and URL", name, st)
		}
		if !slices.Contains(svc.Volumes, "./cluster-key/circle.key:/var/lib/circled/circle.key:ro") || len(svc.Volumes) != 2 {
			t.Fatalf("%s: volumes %v: want its own data volume and the shared key", name, svc.Volumes)
		}
		if svc.StopSignal != "SIGTERM" {
			t.Fatalf("%s: stop signal %q: SIGTERM releases the lease", name, svc.StopSignal)
		}
		urls, instances, adverts = append(urls, st.NATSURL), append(instances, st.Instance), append(adverts, st.Advertise)
	}
	if urls[0] != urls[1] || instances[0] == instances[1] || adverts[0] == adverts[1] {
		t.Fatalf("the two instances: NATS %v, names %v, URLs %v: want one cluster, two names, two URLs", urls, instances, adverts)
	}
	init := file.Services["init"].Entrypoint
	if i := slices.Index(init, "--nats-url"); i < 0 || init[i+1] != urls[0] || !slices.Contains(init, "init") {
		t.Fatalf("init %v does not create the circle on %s", init, urls[0])
	}
	for _, n := range []string{"nats1", "nats2", "nats3"} {
		if _, ok := file.Services[n]; !ok {
			t.Fatalf("no service %s", n)
		}
	}
}
