"""What an item description says: its text, its features, and the content index built from them."""
