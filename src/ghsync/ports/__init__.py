"""The seams the services stand on: one Protocol per outside thing, each served by real adapters and an
in-memory twin that one contract suite (tests/contract/) holds to the same behaviour.

- `uow`: UnitOfWork (projects/links, versions, pairs, operations, conflicts, audit, deliveries, outbox)
- `store`: VersionStore (the local git object store: trees, blobs, commits, merges, backup refs)
- `github`: GitHubRepo (one linked repository: Git Data API, refs, branches, pull requests)
- `jobs`: JobQueue (registered handlers, one queued reconcile per project, RetryLater, periodic tasks)
- `throttle`: ThrottleState (per-installation cool-downs and last quota, shared across processes)

Services import these modules and the domain, never an adapter.
"""
