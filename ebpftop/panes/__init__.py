"""One widget per pane; each is handed the filtered snapshot and draws it."""
