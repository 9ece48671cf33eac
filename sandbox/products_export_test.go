package sandbox

import "maps"

// RouteProducts is routeProducts, for the external tests.
func RouteProducts() map[string]string { return maps.Clone(routeProducts) }

// ProductNames is Finch's product scopes, as sessions accept them.
func ProductNames() []string { return append([]string(nil), productNames...) }
