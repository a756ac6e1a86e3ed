package edge

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// BenchmarkJITRecordMemory reports the heap a session's record of objects sent costs when full,
// at several sizes (Config.JITObjects): 1,000 records, each filled with distinct users. An idle session that was never sent anything
// has no record at all.
//
//	go test ./edge -run '^$' -bench JITRecordMemory -benchtime 1x
func BenchmarkJITRecordMemory(b *testing.B) {
	const sessions = 1000
	ids := make([]string, 32000)
	for i := range ids {
		ids[i] = fmt.Sprintf("U%08d", i) // the store's strings: the record shares them
	}
	for _, size := range []int{64, 128, 512, 2048} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for range b.N {
				recs := make([]*jitRecord, sessions)
				before := heapNow()
				for i := range recs {
					recs[i], _ = simplelru.NewLRU[uint64, int64](size, nil)
					for k := range size {
						recs[i].Add(jitKey{'u', ids[(i*7919+k)%len(ids)]}.hash(), int64(k))
					}
				}
				after := heapNow()
				per := float64(after-before) / sessions
				b.ReportMetric(per/1024, "KiB/session")
				b.ReportMetric(per/float64(size), "B/object")
				runtime.KeepAlive(recs)
			}
		})
	}
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
