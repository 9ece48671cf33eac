// Prints the SDK's HTTP methods, one a line, for sandbox/sdk_test.go.
import { httpMethods } from "./lib.mjs";
console.log(httpMethods().join("\n"));
