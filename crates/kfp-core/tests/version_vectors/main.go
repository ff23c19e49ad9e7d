// Command version_vectors prints the Go KFP Operator's version hashes for the cases in cases.json.
//
// It is an independent reference for kfp-core's `version` module: the hashing code below is ported
// from github.com/sky-uk/kfp-operator (apis/pipelines/object_hasher.go and the ComputeHash /
// ComputeVersion / WriteRunSpec functions of apis/pipelines/hub/{pipeline,experiment,runschedule,run}_types.go),
// with the same docker reference parser (github.com/distribution/reference v0.6.0), Go's encoding/json
// and a metav1.Time stand-in that unmarshals like apimachinery's (time.Parse(RFC3339) then .Local()).
//
// Run (not part of CI):
//
//	cd crates/kfp-core/tests/version_vectors && TZ=UTC go run . < cases.json && TZ=UTC go run . < json_cases.json
package main

import (
	"bytes"
	"crypto/sha1"
	_ "crypto/sha256" // linked into the operator binary, so go-digest sees sha256/sha384/sha512 as available
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// ---- apis/pipelines/object_hasher.go ------------------------------------------------------------

var hashFieldSeparator = []byte{0}

type ObjectHasher struct {
	h hash.Hash
}

func NewObjectHasher() ObjectHasher {
	return ObjectHasher{sha1.New()}
}

func (oh ObjectHasher) WriteStringField(value string) {
	oh.h.Write([]byte(value))
	oh.WriteFieldSeparator()
}

func canonicalJSONOrRaw(raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(canonical)
}

func (oh ObjectHasher) WriteJSONMapField(m map[string]*JSON) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		value := m[k]
		oh.WriteStringField(k)
		if value == nil {
			continue
		}
		oh.WriteStringField(canonicalJSONOrRaw(value.Raw))
	}
}

type KV interface {
	GetKey() string
	GetValue() string
}

func WriteKVListField[T KV](oh ObjectHasher, kvs []T) {
	WriteList(oh, kvs, func(kv1, kv2 T) bool {
		if kv1.GetKey() != kv2.GetKey() {
			return kv1.GetKey() < kv2.GetKey()
		} else {
			return kv1.GetValue() < kv2.GetValue()
		}
	}, func(oh ObjectHasher, kv T) {
		oh.WriteStringField(kv.GetKey())
		oh.WriteStringField(kv.GetValue())
	})
}

func WriteList[T any](oh ObjectHasher, ts []T, cmp func(t1, t2 T) bool, write func(oh ObjectHasher, t T)) {
	sorted := make([]T, len(ts))
	copy(sorted, ts)
	sort.Slice(sorted, func(i, j int) bool {
		return cmp(sorted[i], sorted[j])
	})
	for _, k := range sorted {
		write(oh, k)
	}
	oh.WriteFieldSeparator()
}

func (oh ObjectHasher) WriteFieldSeparator() {
	oh.h.Write(hashFieldSeparator)
}

func (oh ObjectHasher) Sum() []byte {
	return oh.h.Sum(nil)
}

// ---- stand-ins for apimachinery / apiextensions types --------------------------------------------

// JSON mirrors apiextensionsv1.JSON's UnmarshalJSON.
type JSON struct {
	Raw []byte
}

func (s *JSON) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && !bytes.Equal(data, []byte("null")) {
		s.Raw = append(s.Raw[0:0], data...)
	}
	return nil
}

// Time mirrors metav1.Time's UnmarshalJSON and String (the embedded time.Time's).
type Time struct {
	time.Time
}

func (t *Time) UnmarshalJSON(b []byte) error {
	if len(b) == 4 && string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	pt, err := time.Parse(time.RFC3339, str)
	if err != nil {
		return err
	}
	t.Time = pt.Local()
	return nil
}

// NamespacedName mirrors pkg/common.NamespacedName's string form.
type NamespacedName struct {
	Name      string
	Namespace string
}

func (nsn *NamespacedName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 1:
		nsn.Name = parts[0]
	case 2:
		nsn.Namespace, nsn.Name = parts[0], parts[1]
	default:
		return fmt.Errorf("invalid namespaced name %q", s)
	}
	return nil
}

// ---- apis types ---------------------------------------------------------------------------------

type NamedValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (nv NamedValue) GetKey() string   { return nv.Name }
func (nv NamedValue) GetValue() string { return nv.Value }

type PipelineIdentifier struct {
	Name    string
	Version string
}

func (pid *PipelineIdentifier) String() string {
	if pid.Version == "" {
		return pid.Name
	}
	return strings.Join([]string{pid.Name, pid.Version}, ":")
}

func (pid *PipelineIdentifier) UnmarshalJSON(bytes []byte) error {
	var pidStr string
	if err := json.Unmarshal(bytes, &pidStr); err != nil {
		return err
	}
	nameVersion := strings.Split(pidStr, ":")
	pid.Name = nameVersion[0]
	if len(nameVersion) == 2 {
		pid.Version = nameVersion[1]
	}
	return nil
}

// ArtifactPath keeps the Go operator's canonical string (always with the index).
type ArtifactPath struct {
	Component, Artifact, Filter string
	Index                       int
}

const ArtifactPathPattern = `^([^\[\]:]+):([^\[\]:]+)(?::(\d*))?(?:\[([^\[\]:]+)\])?$`

func (ap ArtifactPath) String() string {
	l := fmt.Sprintf("%s:%s:%d", ap.Component, ap.Artifact, ap.Index)
	if ap.Filter == "" {
		return l
	}
	return fmt.Sprintf("%s[%s]", l, ap.Filter)
}

func (ap *ArtifactPath) UnmarshalText(b []byte) error {
	m := regexp.MustCompile(ArtifactPathPattern).FindStringSubmatch(string(b))
	if len(m) < 3 {
		return fmt.Errorf("ArtifactPath must match pattern %s", ArtifactPathPattern)
	}
	ap.Component, ap.Artifact = m[1], m[2]
	if len(m) > 3 && m[3] != "" {
		i, err := strconv.Atoi(m[3])
		if err != nil {
			return err
		}
		ap.Index = i
	}
	if len(m) > 4 {
		ap.Filter = m[4]
	}
	return nil
}

type OutputArtifact struct {
	Name string       `json:"name"`
	Path ArtifactPath `json:"path"`
}

func (oa OutputArtifact) GetKey() string   { return oa.Name }
func (oa OutputArtifact) GetValue() string { return oa.Path.String() }

// ---- hub Pipeline ---------------------------------------------------------------------------------

type PipelineSpec struct {
	Image     string            `json:"image"`
	Env       []NamedValue      `json:"env,omitempty"`
	Framework PipelineFramework `json:"framework"`
}

type PipelineFramework struct {
	Name       string           `json:"name"`
	Parameters map[string]*JSON `json:"parameters"`
}

func (ps PipelineSpec) ComputeHash() []byte {
	oh := NewObjectHasher()
	oh.WriteStringField(ps.Image)
	WriteKVListField(oh, ps.Env)
	oh.WriteStringField(ps.Framework.Name)
	oh.WriteJSONMapField(ps.Framework.Parameters)
	return oh.Sum()
}

func (ps PipelineSpec) ComputeVersion() string {
	hash := ps.ComputeHash()[0:3]
	ref, err := reference.ParseNormalizedNamed(ps.Image)
	if err == nil {
		if namedTagged, ok := reference.TagNameOnly(ref).(reference.NamedTagged); ok {
			return fmt.Sprintf("%s-%x", namedTagged.Tag(), hash)
		}
	}
	return fmt.Sprintf("%x", hash)
}

// ---- hub Experiment -------------------------------------------------------------------------------

type ExperimentSpec struct {
	Description string `json:"description,omitempty"`
}

func (es ExperimentSpec) ComputeVersion() string {
	oh := NewObjectHasher()
	oh.WriteStringField(es.Description)
	return fmt.Sprintf("%x", oh.Sum()[0:3])
}

// ---- hub RunSchedule ------------------------------------------------------------------------------

type Schedule struct {
	CronExpression string `json:"cronExpression,omitempty"`
	StartTime      *Time  `json:"startTime,omitempty"`
	EndTime        *Time  `json:"endTime,omitempty"`
}

type RunScheduleSpec struct {
	Pipeline       PipelineIdentifier `json:"pipeline,omitempty"`
	ExperimentName string             `json:"experimentName,omitempty"`
	Parameters     []NamedValue       `json:"parameters,omitempty"`
	Artifacts      []OutputArtifact   `json:"artifacts,omitempty"`
	Schedule       Schedule           `json:"schedule,omitempty"`
}

func (rs RunScheduleSpec) ComputeVersion() string {
	oh := NewObjectHasher()
	oh.WriteStringField(rs.Pipeline.String())
	oh.WriteStringField(rs.ExperimentName)
	WriteKVListField(oh, rs.Parameters)
	WriteKVListField(oh, rs.Artifacts)
	oh.WriteStringField(rs.Schedule.CronExpression)
	if rs.Schedule.StartTime != nil {
		oh.WriteStringField(rs.Schedule.StartTime.String())
	}
	if rs.Schedule.EndTime != nil {
		oh.WriteStringField(rs.Schedule.EndTime.String())
	}
	return fmt.Sprintf("%x", oh.Sum()[0:3])
}

// ---- hub Run / RunSpec ----------------------------------------------------------------------------

type Parameter struct {
	Name      string     `json:"name"`
	Value     string     `json:"value,omitempty"`
	ValueFrom *ValueFrom `json:"valueFrom,omitempty"`
}

type RunConfigurationRef struct {
	Name           NamespacedName `json:"name"`
	OutputArtifact string         `json:"outputArtifact"`
	Optional       bool           `json:"optional,omitempty"`
}

type ValueFrom struct {
	RunConfigurationRef RunConfigurationRef `json:"runConfigurationRef"`
}

type RunSpec struct {
	Pipeline       PipelineIdentifier `json:"pipeline,omitempty"`
	ExperimentName string             `json:"experimentName,omitempty"`
	Parameters     []Parameter        `json:"parameters,omitempty"`
	Artifacts      []OutputArtifact   `json:"artifacts,omitempty"`
}

func cmpParameters(p1, p2 Parameter) bool {
	if p1.Name != p2.Name {
		return p1.Name < p2.Name
	}
	if p1.Value != p2.Value {
		return p1.Value < p2.Value
	}
	if p1.ValueFrom == nil {
		return p2.ValueFrom != nil
	}
	if p1.ValueFrom.RunConfigurationRef.Name != p2.ValueFrom.RunConfigurationRef.Name {
		return p1.ValueFrom.RunConfigurationRef.Name.Name < p2.ValueFrom.RunConfigurationRef.Name.Name
	}
	if p1.ValueFrom.RunConfigurationRef.OutputArtifact != p2.ValueFrom.RunConfigurationRef.OutputArtifact {
		return p1.ValueFrom.RunConfigurationRef.OutputArtifact < p2.ValueFrom.RunConfigurationRef.OutputArtifact
	}
	return !p1.ValueFrom.RunConfigurationRef.Optional && p1.ValueFrom.RunConfigurationRef.Optional != p2.ValueFrom.RunConfigurationRef.Optional
}

func writeParameter(oh ObjectHasher, p Parameter) {
	oh.WriteStringField(p.Name)
	oh.WriteStringField(p.Value)
	if p.ValueFrom != nil {
		oh.WriteStringField(p.ValueFrom.RunConfigurationRef.Name.Name)
		oh.WriteStringField(p.ValueFrom.RunConfigurationRef.Name.Namespace)
		oh.WriteStringField(p.ValueFrom.RunConfigurationRef.OutputArtifact)
		oh.WriteStringField(strconv.FormatBool(p.ValueFrom.RunConfigurationRef.Optional))
	}
}

func (rs RunSpec) WriteRunSpec(oh ObjectHasher) {
	oh.WriteStringField(rs.Pipeline.String())
	oh.WriteStringField(rs.ExperimentName)
	WriteList(oh, rs.Parameters, cmpParameters, writeParameter)
	WriteKVListField(oh, rs.Artifacts)
}

func (rs RunSpec) ComputeVersion() string {
	oh := NewObjectHasher()
	rs.WriteRunSpec(oh)
	return fmt.Sprintf("%x", oh.Sum()[0:3])
}

func RunComputeVersion(rs RunSpec, observedPipelineVersion string) string {
	oh := NewObjectHasher()
	rs.WriteRunSpec(oh)
	oh.WriteStringField(observedPipelineVersion)
	return fmt.Sprintf("%x", oh.Sum()[0:3])
}

// ---- driver -------------------------------------------------------------------------------------

type Case struct {
	Name                    string          `json:"name"`
	Kind                    string          `json:"kind"`
	Spec                    json.RawMessage `json:"spec"`
	ObservedPipelineVersion string          `json:"observedPipelineVersion"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	var cases []Case
	must(json.NewDecoder(os.Stdin).Decode(&cases))
	for _, c := range cases {
		var out string
		switch c.Kind {
		case "pipeline":
			var s PipelineSpec
			must(json.Unmarshal(c.Spec, &s))
			out = s.ComputeVersion()
		case "experiment":
			var s ExperimentSpec
			must(json.Unmarshal(c.Spec, &s))
			out = s.ComputeVersion()
		case "runschedule":
			var s RunScheduleSpec
			must(json.Unmarshal(c.Spec, &s))
			out = s.ComputeVersion()
		case "runspec":
			var s RunSpec
			must(json.Unmarshal(c.Spec, &s))
			out = s.ComputeVersion()
		case "run":
			var s RunSpec
			must(json.Unmarshal(c.Spec, &s))
			out = RunComputeVersion(s, c.ObservedPipelineVersion)
		case "json":
			// The canonical form WriteJSONMapField hashes for one framework parameter value.
			out = canonicalJSONOrRaw(c.Spec)
		case "time":
			var t Time
			must(json.Unmarshal(c.Spec, &t))
			out = t.String()
		default:
			must(fmt.Errorf("unknown kind %q", c.Kind))
		}
		fmt.Printf("    (%q, r#\"%s\"#),\n", c.Name, out)
	}
}
