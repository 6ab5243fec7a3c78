// Package store keeps berth's own history in an embedded bbolt file: revisions seen, plans, apply history and
// events, each bounded to the last N records per environment.
//
// Non-goals: it is never the truth about what runs. The runtime is: every object carries ownership labels, so
// deleting the file loses history only, never a workload, and a fresh store converges to the same state.
//
// Every record is masked with schema/redact as it is written (one place, the append of every kind): a secret or
// credential registered in the process never reaches the file, in any encoding.
//
// Callers open one Store per file (bbolt locks it), append records as things happen and list them newest first:
//
//	s, err := store.Open(path)
//	defer s.Close()
//	s.AppendRevision(store.Revision{...})
//	plans, err := s.Plans("prod", 10)
package store
