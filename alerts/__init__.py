"""Alert rules (docs/roadmap.md, Alerts): rules as data, a pure evaluate(), the engine loop and
the notifiers. The rules are defined in docs/domain.md (§2.3, §3.3, §4.3, §5.5, §5.6). Not built
yet; this package only reserves the place in the layout."""
