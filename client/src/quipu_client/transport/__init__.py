"""HTTP plumbing: what a call sends, when it is retried, how answers are read (``common``),
and the synchronous (``sync``) and asynchronous (``aio``) loops that do the I/O."""
