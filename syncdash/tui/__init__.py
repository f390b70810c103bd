"""The console (Textual): screens and widgets over the store's read model."""
