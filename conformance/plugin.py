"""pytest plugin entry point (registered through ``pytest11``). Options and collection come with the suite."""
