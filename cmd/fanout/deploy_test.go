package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/fanoutdev/fanout/config"
)

// The deploy files (deploy/k8s, deploy/compose.yaml, deploy/Dockerfile) are
// read by machines we cannot run here (no cluster, no Docker daemon in CI).
// These tests parse them and check what would otherwise drift silently:
// every fanout command and flag they pass exists, every environment
// variable they set is one fanout reads, the probes ask the documented
// paths on the port the process listens on, the grace period outlasts the
// worker's shutdown timeout, and every container is locked down.

const deployDir = "../../deploy"

// knownVars returns every variable config.Load asks for, recorded through
// its getenv: the list follows the code.
func knownVars(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	if _, err := config.Load(func(k string) string { known[k] = true; return "" }, ""); err != nil {
		t.Fatalf("config.Load with an empty environment: %v", err)
	}
	if len(known) < 10 {
		t.Fatalf("config.Load asked for only %d variables; the recording getenv no longer sees them", len(known))
	}
	return known
}

// checkInvocation checks that args (after the fanout binary) name a
// command and that each --flag is in its --help.
func checkInvocation(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no fanout command", where)
		return
	}
	name := args[0]
	if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == name }) {
		t.Errorf("%s: fanout has no command %q", where, name)
		return
	}
	b := setup(t)
	if code := b.run(t, name, "--help"); code != exitOK {
		t.Fatalf("%s: fanout %s --help: exit %d: %s", where, name, code, b.stderr.String())
	}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") || a == "--" {
			continue
		}
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(flag) + `( |$)`).MatchString(b.stdout.String()) {
			t.Errorf("%s: fanout %s has no flag --%s", where, name, flag)
		}
	}
}

// checkVars reports variables fanout does not read.
func checkVars(t *testing.T, where string, known map[string]bool, env map[string]string) {
	t.Helper()
	for _, k := range sortedKeys(env) {
		if !known[k] {
			t.Errorf("%s: sets %s, which fanout does not read (see docs/configuration.md)", where, k)
		}
	}
}

// shutdownTimeout is the worker's FANOUT_SHUTDOWN_TIMEOUT as config
// computes it from env (its default follows ONEROUTE_TIMEOUT).
func shutdownTimeout(t *testing.T, where string, env map[string]string) time.Duration {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		if strings.HasSuffix(k, "_FILE") {
			return "" // a mounted secret, not here
		}
		return env[k]
	}, "")
	if err != nil {
		t.Fatalf("%s: its settings do not load: %v", where, err)
	}
	if cfg.Worker.ShutdownTimeout <= 0 {
		t.Fatalf("%s: shutdown timeout %s", where, cfg.Worker.ShutdownTimeout)
	}
	return cfg.Worker.ShutdownTimeout
}

// listenPort is the port of a host:port setting such as ":9090".
func listenPort(t *testing.T, where, name, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %s=%q is not host:port", where, name, addr)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- Kubernetes ----

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sObject struct {
	file       string
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type workloadSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

// k8sBundle is every object under deploy/k8s.
type k8sBundle struct {
	objects []k8sObject
	byFile  map[string][]k8sObject
}

func loadK8s(t *testing.T) k8sBundle {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	b := k8sBundle{byFile: map[string][]k8sObject{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: not valid YAML: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				t.Fatalf("%s: a document without kind or apiVersion", f)
			}
			o.file = filepath.Base(f)
			b.objects = append(b.objects, o)
			b.byFile[o.file] = append(b.byFile[o.file], o)
		}
	}
	return b
}

func (b k8sBundle) find(kind, name string) (k8sObject, bool) {
	for _, o := range b.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

// k8sTemplates are manifests a user applies on their own, outside the
// kustomization: the Secrets (real values are theirs) and the Job (one
// per campaign, with generateName).
var k8sTemplates = []string{"secrets.example.yaml", "dispatch-job.yaml"}

// kustomization.yaml lists every manifest but the templates, and only
// files that exist: a manifest added and not listed would never be applied.
func TestK8sKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	kust := b.byFile["kustomization.yaml"]
	if len(kust) != 1 {
		t.Fatalf("deploy/k8s/kustomization.yaml: want one document, got %d", len(kust))
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(deployDir, "k8s", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
		if _, ok := b.byFile[r]; !ok {
			t.Errorf("kustomization.yaml lists %s, which is not a manifest in deploy/k8s", r)
		}
	}
	for _, f := range sortedKeys(b.byFile) {
		if f != "kustomization.yaml" && !listed[f] && !slices.Contains(k8sTemplates, f) {
			t.Errorf("deploy/k8s/%s is neither in kustomization.yaml's resources nor a known template", f)
		}
	}
}

// kubectl's own kustomize (offline; no cluster needed) builds
// deploy/k8s: every object in the fanout namespace, the image rewritten.
// Skipped, saying so, where kubectl is not installed (CI does not install
// it; the YAML tests above run everywhere).
func TestK8sKustomizeBuild(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not checked")
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(deployDir, "k8s")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/k8s: %v\n%s", err, out)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	kinds := map[string]int{}
	for {
		var o struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kustomize output: %v", err)
		}
		kinds[o.Kind]++
		if o.Kind != "Namespace" && o.Metadata.Namespace != "fanout" {
			t.Errorf("%s in namespace %q, want fanout", o.Kind, o.Metadata.Namespace)
		}
	}
	want := map[string]int{"Namespace": 1, "ConfigMap": 1, "Deployment": 3, "Service": 2, "PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("kustomize built objects (-want +got):\n%s", diff)
	}
	if !bytes.Contains(out, []byte("image: ghcr.io/fanoutdev/fanout:latest")) {
		t.Errorf("the image name fanout was not rewritten by kustomization.yaml's images")
	}
}

// workload is one pod template of a Deployment or Job with what it gets.
type workload struct {
	where string
	obj   k8sObject
	spec  workloadSpec
	env   map[string]string // envFrom ConfigMaps, then env; secretKeyRef values are ""
}

func workloads(t *testing.T, b k8sBundle) []workload {
	t.Helper()
	var out []workload
	for _, o := range b.objects {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		w := workload{where: o.file + ": " + o.Kind + " " + o.Metadata.Name, obj: o}
		if o.Metadata.Name == "" {
			w.where = o.file + ": " + o.Kind
		}
		if err := o.Spec.Decode(&w.spec); err != nil {
			t.Fatalf("%s: %v", w.where, err)
		}
		if len(w.spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: want one container, got %d", w.where, len(w.spec.Template.Spec.Containers))
		}
		c := w.spec.Template.Spec.Containers[0]
		w.env = map[string]string{}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				t.Errorf("%s: envFrom other than a ConfigMap: list the variables instead", w.where)
				continue
			}
			cm, ok := b.find("ConfigMap", ef.ConfigMapRef.Name)
			if !ok {
				t.Fatalf("%s: envFrom ConfigMap %q is not in deploy/k8s", w.where, ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				w.env[k] = v
			}
		}
		for _, e := range c.Env {
			w.env[e.Name] = e.Value
		}
		out = append(out, w)
	}
	if len(out) < 3 {
		t.Fatalf("found %d workloads in deploy/k8s, want the worker, the monitor and the dispatch Job", len(out))
	}
	return out
}

// Every pod runs non-root with a read-only root, no capabilities, no
// privilege escalation and the runtime's seccomp profile, with resource
// requests and limits; it runs a fanout command and flags that exist and
// sets only variables fanout reads; and every secret it names exists in
// secrets.example.yaml with the key it asks for.
func TestK8sWorkloadsLockedDownAndKnown(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	known := knownVars(t)
	secrets := map[string]map[string]string{}
	for _, o := range b.byFile["secrets.example.yaml"] {
		if o.Kind == "Secret" {
			secrets[o.Metadata.Name] = o.StringData
		}
	}
	for _, w := range workloads(t, b) {
		pod := w.spec.Template.Spec
		c := pod.Containers[0]
		if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", w.where)
		}
		if pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext.runAsUser is not a non-root uid (65532, the image's)", w.where)
		}
		if pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("%s: pod seccompProfile.type = %q, want RuntimeDefault", w.where, pod.SecurityContext.SeccompProfile.Type)
		}
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", w.where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", w.where)
		}
		if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("%s: capabilities.drop = %v, want [ALL]", w.where, sc.Capabilities.Drop)
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
				t.Errorf("%s: no %s request or limit", w.where, r)
			}
		}
		if len(c.Command) > 0 {
			t.Errorf("%s: command %v replaces the image's entry point; pass the fanout command in args", w.where, c.Command)
		}
		checkInvocation(t, w.where, c.Args)
		checkVars(t, w.where, known, w.env)

		mounts := map[string]string{} // mount path -> secret name
		for _, m := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					mounts[m.MountPath] = v.Secret.SecretName
					if !m.ReadOnly {
						t.Errorf("%s: secret volume %s is mounted writable", w.where, m.Name)
					}
				}
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if _, ok := secrets[ref.Name][ref.Key]; !ok {
					t.Errorf("%s: %s reads secret %s key %s, which secrets.example.yaml does not define", w.where, e.Name, ref.Name, ref.Key)
				}
			}
			if !strings.HasSuffix(e.Name, "_FILE") {
				continue
			}
			secret, ok := mounts[filepath.Dir(e.Value)]
			if !ok {
				t.Errorf("%s: %s=%s is not in a mounted secret volume", w.where, e.Name, e.Value)
				continue
			}
			if _, ok := secrets[secret][filepath.Base(e.Value)]; !ok {
				t.Errorf("%s: %s=%s: secret %s has no key %s in secrets.example.yaml", w.where, e.Name, e.Value, secret, filepath.Base(e.Value))
			}
		}
	}
}

// deploymentRunning is the one Deployment whose container runs fanout
// command.
func deploymentRunning(t *testing.T, b k8sBundle, command string) *workload {
	t.Helper()
	var found []workload
	for _, w := range workloads(t, b) {
		if args := w.spec.Template.Spec.Containers[0].Args; w.obj.Kind == "Deployment" && len(args) > 0 && args[0] == command {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d Deployments run fanout %s, want 1", len(found), command)
	}
	return &found[0]
}

// probePort resolves a probe's port (a number or a container port's name).
func probePort(t *testing.T, where string, c k8sContainer, n yaml.Node) int {
	t.Helper()
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: probe port %q is no container port", where, n.Value)
	return 0
}

func checkProbes(t *testing.T, where string, c k8sContainer, port int) {
	t.Helper()
	for _, p := range []struct {
		kind  string
		probe *k8sProbe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s httpGet", where, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: %s asks %s, want %s (docs/monitoring.md)", where, p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if got := probePort(t, where, c, p.probe.HTTPGet.Port); got != port {
			t.Errorf("%s: %s asks port %d, but the process listens on %d", where, p.kind, got, port)
		}
	}
}

// The worker outlives its shutdown timeout before Kubernetes kills it
// (else sends in flight go unrecorded), its probes ask /healthz and
// /readyz on FANOUT_METRICS_ADDR's port, Prometheus is told that port, the
// PDB and the HPA point at it, and no replicas field fights the HPA.
func TestK8sWorkerProbesAndGrace(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	worker := deploymentRunning(t, b, "worker")
	pod := worker.spec.Template.Spec
	shutdown := shutdownTimeout(t, worker.where, worker.env)
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatalf("%s: no terminationGracePeriodSeconds (Kubernetes' 30s default is not tied to FANOUT_SHUTDOWN_TIMEOUT)", worker.where)
	}
	if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= shutdown {
		t.Errorf("%s: terminationGracePeriodSeconds %s is not above FANOUT_SHUTDOWN_TIMEOUT %s", worker.where, grace, shutdown)
	}
	addr, ok := worker.env["FANOUT_METRICS_ADDR"]
	if !ok {
		t.Fatalf("%s: FANOUT_METRICS_ADDR unset: the worker would serve no probe", worker.where)
	}
	port := listenPort(t, worker.where, "FANOUT_METRICS_ADDR", addr)
	checkProbes(t, worker.where, pod.Containers[0], port)
	if a := worker.spec.Template.Metadata.Annotations; a["prometheus.io/port"] != strconv.Itoa(port) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: prometheus.io annotations %v do not name port %d and /metrics", worker.where, a, port)
	}
	if worker.spec.Replicas != nil {
		t.Errorf("%s: replicas is set; the HPA owns the count", worker.where)
	}
	labels := worker.spec.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(worker.spec.Selector.MatchLabels) {
		t.Errorf("%s: selector does not match the pod labels", worker.where)
	}
	var pdbs, hpas int
	for _, o := range b.objects {
		switch o.Kind {
		case "PodDisruptionBudget":
			var s struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
				MaxUnavailable *int `yaml:"maxUnavailable"`
			}
			if err := o.Spec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			if matches(s.Selector.MatchLabels) {
				pdbs++
				if s.MaxUnavailable == nil || *s.MaxUnavailable < 1 {
					t.Errorf("%s: maxUnavailable must let a drain stop a worker", o.file)
				}
			}
		case "HorizontalPodAutoscaler":
			var s struct {
				ScaleTargetRef struct {
					Kind string `yaml:"kind"`
					Name string `yaml:"name"`
				} `yaml:"scaleTargetRef"`
				MinReplicas int `yaml:"minReplicas"`
				MaxReplicas int `yaml:"maxReplicas"`
				Metrics     []struct {
					Resource struct {
						Name string `yaml:"name"`
					} `yaml:"resource"`
				} `yaml:"metrics"`
			}
			if err := o.Spec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			if s.ScaleTargetRef.Kind == "Deployment" && s.ScaleTargetRef.Name == worker.obj.Metadata.Name {
				hpas++
				if s.MinReplicas < 2 || s.MaxReplicas < s.MinReplicas {
					t.Errorf("%s: replicas %d..%d: want at least 2, so the PDB can let one go", o.file, s.MinReplicas, s.MaxReplicas)
				}
				if len(s.Metrics) != 1 || s.Metrics[0].Resource.Name != "cpu" {
					t.Errorf("%s: want the one CPU metric docs/deployment.md describes", o.file)
				}
			}
		}
	}
	if pdbs != 1 || hpas != 1 {
		t.Errorf("the worker has %d PodDisruptionBudgets and %d HorizontalPodAutoscalers, want 1 and 1", pdbs, hpas)
	}
}

// The monitor listens on a non-loopback FANOUT_MONITOR_ADDR, so it must
// have credentials (it refuses to start without); its probes and its
// Service reach the port it listens on.
func TestK8sMonitorServedAndAuthenticated(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	mon := deploymentRunning(t, b, "monitor")
	addr := mon.env["FANOUT_MONITOR_ADDR"]
	if addr == "" {
		t.Fatalf("%s: FANOUT_MONITOR_ADDR unset: the monitor would listen on 127.0.0.1 only", mon.where)
	}
	port := listenPort(t, mon.where, "FANOUT_MONITOR_ADDR", addr)
	if _, ok := mon.env["FANOUT_MONITOR_AUTH_FILE"]; !ok {
		if _, ok := mon.env["FANOUT_MONITOR_AUTH"]; !ok {
			t.Errorf("%s: no FANOUT_MONITOR_AUTH(_FILE): the monitor refuses a non-loopback address without it", mon.where)
		}
	}
	c := mon.spec.Template.Spec.Containers[0]
	checkProbes(t, mon.where, c, port)
	svc, ok := b.find("Service", mon.obj.Metadata.Name)
	if !ok {
		t.Fatalf("no Service %s", mon.obj.Metadata.Name)
	}
	var s struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	if err := svc.Spec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.Selector {
		if mon.spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service %s: selector %s=%s does not match the monitor's pods", svc.Metadata.Name, k, v)
		}
	}
	if len(s.Ports) != 1 || probePort(t, "Service "+svc.Metadata.Name, c, s.Ports[0].TargetPort) != port {
		t.Errorf("Service %s: targetPort is not the monitor's port %d", svc.Metadata.Name, port)
	}
}

// ---- Compose ----

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	EnvFile     any               `yaml:"env_file"`
	StopGrace   string            `yaml:"stop_grace_period"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy struct {
		Resources struct {
			Limits struct {
				CPUs   string `yaml:"cpus"`
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

// readEnvFile reads KEY=VALUE lines, skipping comments and blank lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s:%d: not KEY=VALUE", path, n)
		}
		env[k] = v
	}
	return env
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate expands ${VAR}, ${VAR:-default} and ${VAR:?error} as Compose
// does, and reports a variable that is neither in env nor defaulted.
func interpolate(t *testing.T, text string, env map[string]string) string {
	t.Helper()
	return composeVar.ReplaceAllStringFunc(text, func(m string) string {
		g := composeVar.FindStringSubmatch(m)
		if v, ok := env[g[1]]; ok && v != "" {
			return v
		}
		if strings.HasSuffix(g[2], "-") {
			return g[3]
		}
		t.Errorf("compose.yaml uses ${%s}, which deploy/.env.example does not set", g[1])
		return ""
	})
}

// compose.yaml, with deploy/.env.example's values, works as written: the
// monitor is published on loopback only and gets both logins, Redis has a
// password that every REDIS_URL carries, AOF and noeviction; every
// long-running service has a healthcheck and resource limits; every fanout
// container is read-only without capabilities, runs commands and flags
// that exist and sets only variables fanout reads; the workers outlast
// their shutdown timeout.
func TestComposeStack(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := readEnvFile(t, filepath.Join(deployDir, ".env.example"))
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(interpolate(t, string(raw), env)), &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	known := knownVars(t)
	for _, name := range []string{"redis", "sandbox", "worker", "monitor", "dispatch"} {
		if _, ok := file.Services[name]; !ok {
			t.Errorf("compose.yaml: no %s service", name)
		}
	}
	password := env["REDIS_PASSWORD"]
	if password == "" {
		t.Fatal(".env.example sets no REDIS_PASSWORD")
	}
	redis := file.Services["redis"]
	cmd := " " + strings.Join(redis.Command, " ") + " "
	for _, want := range []string{" --requirepass " + password + " ", " --appendonly yes ", " --maxmemory-policy noeviction "} {
		if !strings.Contains(cmd, want) {
			t.Errorf("compose.yaml: redis command %q lacks %q", cmd, strings.TrimSpace(want))
		}
	}
	for _, name := range sortedKeys(file.Services) {
		s := file.Services[name]
		where := "compose.yaml: " + name
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond loopback; write 127.0.0.1:HOST:CONTAINER", where, p)
			}
		}
		if s.EnvFile != nil {
			t.Errorf("%s: env_file would pass every variable of the file; name each in environment", where)
		}
		oneShot := slices.Contains(s.Profiles, "tools")
		if !oneShot && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("%s: no healthcheck", where)
		}
		if s.Deploy.Resources.Limits.CPUs == "" || s.Deploy.Resources.Limits.Memory == "" {
			t.Errorf("%s: no deploy.resources.limits cpus and memory", where)
		}
		if name == "redis" {
			continue
		}
		// A fanout container.
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: want read_only: true and cap_drop: [ALL]", where)
		}
		checkInvocation(t, where, s.Command)
		if s.Healthcheck != nil {
			hc := s.Healthcheck.Test
			if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "/usr/local/bin/fanout" {
				t.Errorf("%s: healthcheck %v: want [CMD, /usr/local/bin/fanout, healthcheck, ...] (the image has no shell or curl)", where, hc)
			} else {
				checkInvocation(t, where+" healthcheck", hc[2:])
			}
		}
		checkVars(t, where, known, s.Environment)
		if u := s.Environment["REDIS_URL"]; s.Command[0] != "sandbox" && !strings.Contains(u, ":"+password+"@") {
			t.Errorf("%s: REDIS_URL %q does not carry REDIS_PASSWORD", where, u)
		}
	}
	worker := file.Services["worker"]
	grace, err := time.ParseDuration(worker.StopGrace)
	if err != nil {
		t.Fatalf("compose.yaml: worker: stop_grace_period %q: %v", worker.StopGrace, err)
	}
	if shutdown := shutdownTimeout(t, "compose.yaml: worker", worker.Environment); grace <= shutdown {
		t.Errorf("compose.yaml: worker: stop_grace_period %s is not above FANOUT_SHUTDOWN_TIMEOUT %s", grace, shutdown)
	}
	if addr := worker.Environment["FANOUT_METRICS_ADDR"]; addr == "" || worker.Healthcheck == nil || !strings.Contains(strings.Join(worker.Healthcheck.Test, " "), ":"+strconv.Itoa(listenPort(t, "compose.yaml: worker", "FANOUT_METRICS_ADDR", addr))+"/readyz") {
		t.Errorf("compose.yaml: worker: the healthcheck does not ask /readyz on FANOUT_METRICS_ADDR (%q)", addr)
	}
	mon := file.Services["monitor"]
	for _, k := range []string{"FANOUT_MONITOR_AUTH", "FANOUT_MONITOR_READONLY_AUTH"} {
		if mon.Environment[k] == "" || mon.Environment[k] != env[k] {
			t.Errorf("compose.yaml: monitor: %s does not come from the env file", k)
		}
	}
}

// ---- Dockerfile ----

// The image stays static, distroless and non-root, stamps the version it
// is given into the binary and its OCI labels, and keeps fanout as the
// entry point so one image runs every subcommand.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"CGO_ENABLED=0 go build",
		"-X main.version=${VERSION}",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER 65532:65532",
		`ENTRYPOINT ["/usr/local/bin/fanout"]`,
		`org.opencontainers.image.version="${VERSION}"`,
		`org.opencontainers.image.revision="${REVISION}"`,
		`org.opencontainers.image.created="${CREATED}"`,
		"org.opencontainers.image.source=",
		"org.opencontainers.image.title=",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	// Each stage declares the build arguments it uses: an ARG before FROM
	// or in another stage is empty in this one.
	for _, stage := range strings.Split(text, "\nFROM ")[1:] {
		from, _, _ := strings.Cut(stage, "\n")
		for _, arg := range []string{"VERSION", "REVISION", "CREATED"} {
			if strings.Contains(stage, "${"+arg+"}") && !strings.Contains(stage, "\nARG "+arg) {
				t.Errorf("deploy/Dockerfile: the stage FROM %s uses ${%s} without its own ARG %s", from, arg, arg)
			}
		}
	}
}
