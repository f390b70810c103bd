"""The engine, its store and the value conversions: no UI imports here, ever."""
