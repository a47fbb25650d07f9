"""Alert rules (ROADMAP.md item 2): rules as data, a pure evaluate(), the engine loop and the
notifiers. Not built yet; this package only reserves the place in the layout."""
