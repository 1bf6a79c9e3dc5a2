"""The battles aggregate: who may evaluate where, handing out battles, votes, live battles.

`rules` states each rule once (SQL fragment and Q side by side), `store` holds every SQL
statement, `sampler` serves and creates battles, `votes` records votes, `live` starts and
continues live battles, `read` is read-only, `io` imports and exports clean battles.
"""
