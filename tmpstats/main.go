package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/origin"
)

func main() {
	sz, _ := origin.SizeByName("giant")
	w, _ := origin.NewWorld(1, sz)
	srv, err := origin.NewServer(origin.ServerConfig{World: w})
	if err != nil { panic(err) }
	team := srv.TeamIDs()[0]
	t0 := time.Now()
	users := srv.Users(team)
	chans := srv.Channels(team)
	fmt.Println("gen", time.Since(t0), len(users), len(chans))
	t0 = time.Now()
	terms := map[string]int{}
	posts := 0
	for _, u := range users {
		seen := map[string]bool{}
		for _, f := range []string{u.Name, u.DisplayName, u.RealName} {
			for _, wd := range index.Words(f) {
				if !seen[wd] { seen[wd] = true; terms[wd]++; posts++ }
			}
		}
	}
	for _, c := range chans {
		for _, wd := range index.Words(c.Name) { terms[wd]++; posts++ }
	}
	fmt.Println("fold", time.Since(t0), "terms", len(terms), "postings", posts)
	keys := make([]string, 0, len(terms))
	for k := range terms { keys = append(keys, k) }
	sort.Strings(keys)
	for _, p := range []string{"a", "j", "s", "m", "jo", "ma", "joh", "mar", "john", "gen", "sm", "smith", "n", "nu"} {
		n, nt := 0, 0
		for _, k := range keys { if strings.HasPrefix(k, p) { n += terms[k]; nt++ } }
		fmt.Println(p, "postings", n, "terms", nt, "exact", terms[p])
	}
	type kv struct{k string; v int}
	var top []kv
	for k, v := range terms { top = append(top, kv{k, v}) }
	sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v })
	fmt.Println(top[:30])
	fmt.Println(users[5], users[100])
}
