// The JSON status document of a job (docs/api.md, "Status document").
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "core/job.h"

namespace acceptd::api {

std::string StatusUrl(const JobId& id);  // "/v1/jobs/{id}"
std::string ResultUrl(const JobId& id);  // "/v1/jobs/{id}/result"
boost::json::object JobDocument(const Job& job);

}  // namespace acceptd::api
