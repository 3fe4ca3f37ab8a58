"""llm-route: pick an agent from the registry for a task, run its executor, fail over, agree.

    registry.py   YAML registry -> validated Registry (errors name the line and field)
    rules.py      pure: task + registry -> Decision (candidates, complexity, cost, ranking)
    catalog.py    what the executors say: paths, default models, prices, open circuits
    facts.py      the provider classes' answers, kept in the route cache between runs
    _cache.py     the route cache: files in $XDG_CACHE_HOME/llm-exec, keyed by what they derive from
    spawn.py      executor subprocesses: one attempt, failover, consensus; signal forwarding
    consensus.py  pure: agreement verdict between outputs
    router.py     one routed task end to end (what the `llm-route` command runs)
    listing.py    `llm-route agents` (models, prices, key status)
"""
