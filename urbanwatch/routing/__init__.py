"""Alert routing as data: the route file (kind + district + severity -> unit -> crews ->
channels), its parser, and the shipped defaults (`routes.yaml`)."""
