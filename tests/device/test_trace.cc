// trace-file at the device level: the event points a front end calls around try_submit record
// each request's submit, service, hold and delivery in order, on the right threads; trace-limit
// bounds the records; off, a request gets no record.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "device_test_util.h"
#include "json.h"
#include "simaccel/trace.h"

namespace simaccel::test {
namespace {

// One request the way the bridge drives it: submit (retrying on busy), wait, finish.
void run_traced(Device &dev, TestRequest &r) {
    const trace::Finish fin{r};
    for (;;) {
        trace::submitting(r);
        const Submit s = dev.try_submit(&r);
        trace::submitted(r, s);
        if (s == Submit::kAccepted)
            break;
        ASSERT_EQ(s, Submit::kBusy);
        std::this_thread::yield();
    }
    ASSERT_TRUE(r.wait());
    trace::resumed(r);
}

struct Slice {
    double b = 0, e = 0;
    double tid = 0;
};

// id -> slice name -> slice, from the trace's complete events.
std::map<int, std::map<std::string, Slice>> slices_of(const Json &trace) {
    std::map<int, std::map<std::string, Slice>> out;
    const Json *events = trace.get("traceEvents");
    if (!events || !events->array())
        return out;
    for (const Json &ev : *events->array()) {
        if (ev.get("ph")->text() != "X")
            continue;
        const int id = static_cast<int>(*ev.get("args")->get("id")->number());
        const double ts = *ev.get("ts")->number();
        out[id][*ev.get("name")->text()] = {ts, ts + *ev.get("dur")->number(),
                                            *ev.get("tid")->number()};
    }
    return out;
}

TEST(Trace, RecordsEachStepInOrderAndKeepsTheFirstLimit) {
    Device dev;
    constexpr unsigned kLimit = 37; // a limit of its own: a fresh buffer for this test
    configure(dev, "trace-file=/nonexistent/trace.json trace-limit=37 latency=fixed:300us "
                   "workers=1");
    std::vector<std::unique_ptr<TestRequest>> reqs;
    for (unsigned i = 0; i < kLimit + 13; ++i) {
        reqs.push_back(std::make_unique<TestRequest>(OpClass::kNull));
        run_traced(dev, *reqs.back());
    }
    std::string err;
    const std::optional<Json> trace = Json::parse(trace::to_json(), &err);
    ASSERT_TRUE(trace) << err;
    EXPECT_EQ(trace->get("otherData")->get("requests")->number(), kLimit);
    EXPECT_EQ(trace->get("otherData")->get("full")->text(), "true");
    const auto slices = slices_of(*trace);
    ASSERT_EQ(slices.size(), kLimit) << "the first trace-limit requests, no more";
    for (const auto &[id, s] : slices) {
        ASSERT_LT(id, static_cast<int>(kLimit));
        for (const char *name : {"submit", "service", "deliver", "on_complete", "resume"})
            ASSERT_TRUE(s.count(name)) << "request " << id << ": no " << name;
        const Slice &sub = s.at("submit"), &svc = s.at("service"), &dlv = s.at("deliver"),
                    &res = s.at("resume");
        EXPECT_LE(sub.b, svc.b) << id;
        EXPECT_LE(svc.e, dlv.b) << id;
        EXPECT_LE(dlv.b, res.b) << id;
        // The modelled latency: delivered no earlier than 300 us after the submission.
        EXPECT_GE(dlv.b - sub.b, 299.0) << id;
        EXPECT_NE(svc.tid, sub.tid) << "request " << id << ": serviced on the submitting thread";
        EXPECT_EQ(res.tid, sub.tid) << id;
    }
    // Off: requests get no record.
    configure(dev, "trace-file=none trace-limit=37 latency=fixed:300us workers=1");
    TestRequest off(OpClass::kNull);
    run_traced(dev, off);
    EXPECT_EQ(off.trace_rec, nullptr);
}

} // namespace
} // namespace simaccel::test
