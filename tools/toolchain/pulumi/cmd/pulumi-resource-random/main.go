// pulumi-resource-random: a small stand-in for the Pulumi "random" provider,
// reporting version <pulumi-random pin>+ai-infra-matrix so no one takes it for upstream.
//
// Written for ai-infra-matrix because the Go module proxy reachable here serves
// no version of github.com/pulumi/pulumi-random/provider/v4, so the upstream
// provider cannot be built. It speaks the provider gRPC protocol for the
// resource types of the pulumi_random Python SDK that this project uses:
//
//	random:index/randomPassword:RandomPassword  (result and bcryptHash are secrets)
//	random:index/randomString:RandomString
//	random:index/randomUuid:RandomUuid
//	random:index/randomId:RandomId  (hex, b64Std, b64Url, dec; the Kafka cluster id)
//
// Semantics follow the upstream provider: values are generated once with
// crypto/rand, stored in state, and any input change (including `keepers`)
// replaces the resource (main_test.go holds Diff to that: the Kafka quorum lock
// relies on it).
//
// Not implemented: the other random resource types (RandomInteger, RandomPet,
// RandomShuffle, RandomBytes) fail with a clear error; `pulumi import` of any
// type fails (Read only echoes state on refresh); Update always fails (nothing
// is updated in place); Invoke, Call, Construct, Attach, Parameterize and
// GetMapping(s) answer Unimplemented.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Version is set with -ldflags "-X main.Version=..." to the pulumi-random
// version pinned in requirements.txt plus "+ai-infra-matrix".
var Version = "0.0.0-dev"

const (
	typePassword = "random:index/randomPassword:RandomPassword"
	typeString   = "random:index/randomString:RandomString"
	typeUUID     = "random:index/randomUuid:RandomUuid"
	typeID       = "random:index/randomId:RandomId"

	lowerChars   = "abcdefghijklmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	numericChars = "0123456789"
	specialChars = "!@#$%&*()-_=+[]{}<>:?"
)

var stringInputs = []string{
	"keepers", "length", "lower", "minLower", "minNumeric", "minSpecial", "minUpper",
	"number", "numeric", "overrideSpecial", "special", "upper",
}

func inputKeys(typ string) ([]string, error) {
	switch typ {
	case typePassword, typeString:
		return stringInputs, nil
	case typeUUID:
		return []string{"keepers"}, nil
	case typeID:
		return []string{"byteLength", "keepers", "prefix"}, nil
	}
	return nil, fmt.Errorf("resource type %q is not supported by the ai-infra-matrix random provider "+
		"(supported: RandomPassword, RandomString, RandomUuid, RandomId)", typ)
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOpts)
}

type randomProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
}

func main() {
	err := provider.Main("random", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &randomProvider{}, nil
	})
	if err != nil {
		panic(err)
	}
}

func (p *randomProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (p *randomProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":"random","version":%q}`, Version)}, nil
}

func (p *randomProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *randomProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *randomProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *randomProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Check validates inputs and fills in the upstream defaults.
func (p *randomProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := resource.URN(req.GetUrn()).Type().String()
	if _, err := inputKeys(typ); err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	if typ == typeID {
		if n, ok := news["byteLength"]; !ok || !n.IsNumber() || n.NumberValue() < 1 {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "byteLength", Reason: "byteLength must be at least 1"})
		}
	}
	if typ == typePassword || typ == typeString {
		length, ok := news["length"]
		switch {
		case !ok || length.IsNull():
			failures = append(failures, &pulumirpc.CheckFailure{Property: "length", Reason: "length is required"})
		case length.IsNumber() && length.NumberValue() < 1:
			failures = append(failures, &pulumirpc.CheckFailure{Property: "length", Reason: "length must be at least 1"})
		}
		for _, k := range []string{"lower", "upper", "special", "numeric", "number"} {
			if v, ok := news[resource.PropertyKey(k)]; !ok || v.IsNull() {
				news[resource.PropertyKey(k)] = resource.NewBoolProperty(true)
			}
		}
		// `number` is the deprecated spelling of `numeric`; upstream keeps them equal.
		if n, u := news["numeric"], news["number"]; n.IsBool() && u.IsBool() {
			v := resource.NewBoolProperty(n.BoolValue() && u.BoolValue())
			news["numeric"], news["number"] = v, v
		}
		for _, k := range []string{"minLower", "minUpper", "minNumeric", "minSpecial"} {
			if v, ok := news[resource.PropertyKey(k)]; !ok || v.IsNull() {
				news[resource.PropertyKey(k)] = resource.NewNumberProperty(0)
			}
		}
	}
	inputs, err := marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// Diff: every input forces replacement, as in the upstream provider.
func (p *randomProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ := resource.URN(req.GetUrn()).Type().String()
	keys, err := inputKeys(typ)
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var replaces []string
	for _, k := range keys {
		o, n := olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]
		if o.IsNull() && n.IsNull() {
			continue
		}
		if !o.DeepEquals(n) {
			replaces = append(replaces, k)
		}
	}
	if len(replaces) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, Replaces: replaces, Diffs: replaces,
	}, nil
}

func (p *randomProvider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := resource.URN(req.GetUrn()).Type().String()
	if _, err := inputKeys(typ); err != nil {
		return nil, err
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		if typ == typeID {
			for _, k := range idOutputs {
				props[resource.PropertyKey(k)] = resource.MakeComputed(resource.NewStringProperty(""))
			}
			out, err := marshal(props)
			return &pulumirpc.CreateResponse{Properties: out}, err
		}
		props["result"] = resource.MakeComputed(resource.NewStringProperty(""))
		if typ == typePassword {
			props["bcryptHash"] = resource.MakeComputed(resource.NewStringProperty(""))
		}
		out, err := marshal(props)
		return &pulumirpc.CreateResponse{Properties: out}, err
	}

	var id string
	switch typ {
	case typeID:
		encoded, err := newID(intProp(props, "byteLength"), stringProp(props, "prefix"))
		if err != nil {
			return nil, err
		}
		for k, v := range encoded {
			props[resource.PropertyKey(k)] = resource.NewStringProperty(v)
		}
		id = encoded["b64Url"]
	case typeUUID:
		u, err := newUUID()
		if err != nil {
			return nil, err
		}
		props["result"] = resource.NewStringProperty(u)
		id = u
	default:
		result, err := generate(props)
		if err != nil {
			return nil, err
		}
		if typ == typePassword {
			hash, err := bcrypt.GenerateFromPassword([]byte(result), bcrypt.DefaultCost)
			if err != nil {
				return nil, err
			}
			props["result"] = resource.MakeSecret(resource.NewStringProperty(result))
			props["bcryptHash"] = resource.MakeSecret(resource.NewStringProperty(string(hash)))
			id = "none"
		} else {
			props["result"] = resource.NewStringProperty(result)
			id = result
		}
	}
	out, err := marshal(props)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: out}, nil
}

// Read returns the stored state unchanged: random values never drift.
func (p *randomProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if req.GetProperties() == nil || len(req.GetProperties().GetFields()) == 0 {
		return nil, fmt.Errorf("importing %s is not supported by the ai-infra-matrix random provider",
			resource.URN(req.GetUrn()).Type())
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *randomProvider) Update(context.Context, *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return nil, fmt.Errorf("random resources are replaced, never updated")
}

func (p *randomProvider) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func intProp(m resource.PropertyMap, k string) int {
	if v := m[resource.PropertyKey(k)]; v.IsNumber() {
		return int(v.NumberValue())
	}
	return 0
}

func stringProp(m resource.PropertyMap, k string) string {
	if v := m[resource.PropertyKey(k)]; v.IsString() {
		return v.StringValue()
	}
	return ""
}

// idOutputs are the encodings of a RandomId, each with the prefix in front, as upstream.
var idOutputs = []string{"b64Std", "b64Url", "dec", "hex"}

func newID(byteLength int, prefix string) (map[string]string, error) {
	b := make([]byte, byteLength)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return map[string]string{
		"b64Std": prefix + base64.StdEncoding.EncodeToString(b),
		"b64Url": prefix + base64.RawURLEncoding.EncodeToString(b),
		"dec":    prefix + new(big.Int).SetBytes(b).String(),
		"hex":    prefix + hex.EncodeToString(b),
	}, nil
}

func boolProp(m resource.PropertyMap, k string) bool {
	v := m[resource.PropertyKey(k)]
	return !v.IsBool() || v.BoolValue()
}

func randomFrom(chars string, n int) ([]byte, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(chars)))
	for i := range out {
		j, err := rand.Int(rand.Reader, max)
		if err != nil {
			return nil, err
		}
		out[i] = chars[j.Int64()]
	}
	return out, nil
}

// generate follows upstream: first the minimum counts of each enabled class,
// then the rest from all enabled classes, then a shuffle.
func generate(props resource.PropertyMap) (string, error) {
	length := intProp(props, "length")
	special := specialChars
	if v := props["overrideSpecial"]; v.IsString() {
		special = v.StringValue()
	}
	classes := []struct {
		on    bool
		chars string
		min   int
	}{
		{boolProp(props, "lower"), lowerChars, intProp(props, "minLower")},
		{boolProp(props, "upper"), upperChars, intProp(props, "minUpper")},
		{boolProp(props, "numeric") && boolProp(props, "number"), numericChars, intProp(props, "minNumeric")},
		{boolProp(props, "special"), special, intProp(props, "minSpecial")},
	}
	var all strings.Builder
	var result []byte
	for _, c := range classes {
		if !c.on || c.chars == "" {
			continue
		}
		all.WriteString(c.chars)
		b, err := randomFrom(c.chars, c.min)
		if err != nil {
			return "", err
		}
		result = append(result, b...)
	}
	if all.Len() == 0 {
		return "", fmt.Errorf("at least one of lower, upper, numeric or special must be enabled")
	}
	if len(result) > length {
		return "", fmt.Errorf("length (%d) is less than the sum of the min* counts (%d)", length, len(result))
	}
	rest, err := randomFrom(all.String(), length-len(result))
	if err != nil {
		return "", err
	}
	result = append(result, rest...)
	for i := len(result) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		result[i], result[j.Int64()] = result[j.Int64()], result[i]
	}
	return string(result), nil
}

func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
