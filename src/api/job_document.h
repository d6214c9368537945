// The JSON status document of a job (docs/api.md, "Status document").
//
// Written straight into a string: it is the body of every status poll, the
// hottest response acceptd sends, so it avoids building a DOM first.
#pragma once

#include <string>

#include "core/job.h"

namespace acceptd::api {

std::string StatusUrl(const JobId& id);  // "/v1/jobs/{id}"
std::string ResultUrl(const JobId& id);  // "/v1/jobs/{id}/result"
// Appends the document (a JSON object) to `out`.
void AppendJobDocument(const Job& job, std::string& out);
std::string JobDocument(const Job& job);

}  // namespace acceptd::api
