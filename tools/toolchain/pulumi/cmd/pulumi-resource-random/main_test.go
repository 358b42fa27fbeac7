package main

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const quorumLockURN = "urn:pulumi:prod::ai-infra-matrix::ai-infra:index:KafkaKRaft$random:index/randomId:RandomId::kafka-controller-quorum-lock"

func props(t *testing.T, m resource.PropertyMap) *pulumirpc.DiffRequest {
	t.Helper()
	s, err := marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &pulumirpc.DiffRequest{Urn: quorumLockURN, News: s}
}

func lock(voters string) resource.PropertyMap {
	return resource.PropertyMap{
		"byteLength": resource.NewNumberProperty(4),
		"keepers": resource.NewObjectProperty(resource.PropertyMap{
			"quorum": resource.NewStringProperty("dedicated:3"),
			"voters": resource.NewStringProperty(voters),
		}),
	}
}

func diff(t *testing.T, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	req := props(t, news)
	o, err := marshal(olds)
	if err != nil {
		t.Fatal(err)
	}
	req.Olds = o
	resp, err := (&randomProvider{}).Diff(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The Kafka quorum lock is protected in prod: a change of its keepers must be a
// replacement, which Pulumi then refuses, or the static voters could be rewritten.
func TestDiffReplacesWhenKeepersChange(t *testing.T) {
	resp := diff(t, lock("0@a:9093,1@b:9093,2@c:9093"), lock("0@a:9093,1@b:9093,2@c:9093,3@d:9093"))
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME {
		t.Fatalf("changes = %v, want DIFF_SOME", resp.GetChanges())
	}
	if got := resp.GetReplaces(); len(got) != 1 || got[0] != "keepers" {
		t.Fatalf("replaces = %v, want [keepers]", got)
	}
}

func TestDiffKeepsTheValueWhenNothingChanges(t *testing.T) {
	resp := diff(t, lock("0@a:9093"), lock("0@a:9093"))
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE || len(resp.GetReplaces()) != 0 {
		t.Fatalf("changes = %v, replaces = %v, want DIFF_NONE and none", resp.GetChanges(), resp.GetReplaces())
	}
}

func TestDiffReplacesOnAnyOtherInputToo(t *testing.T) {
	news := lock("0@a:9093")
	news["byteLength"] = resource.NewNumberProperty(8)
	resp := diff(t, lock("0@a:9093"), news)
	if got := resp.GetReplaces(); len(got) != 1 || got[0] != "byteLength" {
		t.Fatalf("replaces = %v, want [byteLength]", got)
	}
}

func TestDiffRefusesTypesItDoesNotImplement(t *testing.T) {
	req := props(t, resource.PropertyMap{})
	req.Urn = "urn:pulumi:prod::ai-infra-matrix::random:index/randomPet:RandomPet::pet"
	if _, err := (&randomProvider{}).Diff(context.Background(), req); err == nil {
		t.Fatal("Diff of a RandomPet succeeded; want the unsupported-type error")
	}
}
