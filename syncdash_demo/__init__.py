"""The demo beside the product: sample REST APIs, a JavaScript-rendered sample site, the race-day flow servers
and `syncdash demo` (registered through the `syncdash.commands` entry point). The product never imports it."""
