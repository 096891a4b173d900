"""JSON-LD in and out: bundled contexts, the offline loader, collision handling, activities and records, AS2 output."""
