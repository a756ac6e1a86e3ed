package index_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/weft-edge/weft/index"
)

func BenchmarkGiantBuild(b *testing.B) {
	_, st := giantStore(b)
	for i := 0; i < b.N; i++ {
		begin := time.Now()
		x := index.New(st, index.Config{NoFuzzy: true})
		<-x.Ready()
		b.ReportMetric(float64(time.Since(begin).Milliseconds()), "build-ms")
		runtime.GC()
		b.ReportMetric(float64(x.Stats().Bytes)/(1<<20), "est-MiB")
		x.Close()
	}
}

func BenchmarkGiantQuick(b *testing.B) {
	srv, st := giantStore(b)
	x := index.New(st, index.Config{NoFuzzy: true})
	defer x.Close()
	<-x.Ready()
	users := srv.Users(srv.TeamIDs()[0])
	qs := []string{"a", "j", "s", "jo", "ma", "joh", "mar", "john", "smi", "jose nu", "gen", "proj", "b", "zz", "m j"}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := qs[i%len(qs)]
		if _, err := x.Search(ctx, index.Query{Text: q, Caller: users[(i*7919)%len(users)].ID}); err != nil {
			b.Fatal(err)
		}
	}
}
