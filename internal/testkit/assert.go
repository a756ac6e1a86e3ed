package testkit

import (
	"errors"
	"reflect"
)

// The assertion helpers that several packages' tests had each written for themselves. Each
// stops the test (Fatal), so that what follows can rely on what was asserted.

// OK fails t if err is not nil.
func OK(t T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// Equal fails t, naming what, if got and want are not deeply equal.
func Equal[V any](t T, got, want V, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// IsErr fails t if err does not wrap target.
func IsErr(t T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
}

// True fails t with the formatted message if cond does not hold.
func True(t T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}
