// omniq: a durable, distributed task queue on NATS JetStream. This umbrella header brings in
// the whole public API; include the part headers instead to keep compile times down.
#pragma once

#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/cron.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/local_server.hpp"
#include "omniq/models.hpp"
#include "omniq/reports.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/scheduler.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/time.hpp"
#include "omniq/validation.hpp"
#include "omniq/version.hpp"
#include "omniq/worker.hpp"
