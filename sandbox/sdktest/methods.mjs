// Prints the SDK's HTTP methods, one a line, for sandbox/sdk_test.go; with
// --routes, each method's HTTP verb and path too ("hris.company.retrieve
// GET /employer/company").
import { httpMethods, httpRequests } from "./lib.mjs";
if (process.argv.includes("--routes")) {
  const reqs = httpRequests();
  console.log(httpMethods().map((m) => `${m} ${reqs[m].verb} ${reqs[m].path}`).join("\n"));
} else {
  console.log(httpMethods().join("\n"));
}
