package main

import (
	"database/sql"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	dir, _ := os.MkdirTemp("", "exp")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", dir+"/x.db?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-32768)")
	if err != nil {
		panic(err)
	}
	db.SetMaxOpenConns(1)
	must := func(_ sql.Result, err error) {
		if err != nil {
			panic(err)
		}
	}
	must(db.Exec(`CREATE TABLE t (id TEXT PRIMARY KEY, st TEXT, pad TEXT) WITHOUT ROWID`))
	must(db.Exec(`CREATE INDEX t_st ON t (st, id) WHERE st = 'p'`))
	mode := os.Args[1]
	f, _ := os.Create("/tmp/exp-" + mode + ".prof")
	pprof.StartCPUProfile(f)
	start := time.Now()
	n := 0
	for i := 0; i < 3000; i++ {
		tx, _ := db.Begin()
		for j := 0; j < 32; j++ {
			must(tx.Exec(`INSERT INTO t VALUES (?, 'p', ?)`, fmt.Sprintf("%09d-%02d", i, j), fmt.Sprintf("%0300d", j)))
		}
		if i > 0 {
			if mode == "sp" {
				must(tx.Exec(`SAVEPOINT x`))
			}
			must(tx.Exec(`UPDATE t SET st = 's' WHERE id >= ? AND id < ?`, fmt.Sprintf("%09d", i-1), fmt.Sprintf("%09d", i)))
			if mode == "sp" {
				must(tx.Exec(`RELEASE x`))
			}
		}
		if err := tx.Commit(); err != nil {
			panic(err)
		}
		n++
	}
	pprof.StopCPUProfile()
	fmt.Println(mode, time.Since(start)/time.Duration(n))
}
