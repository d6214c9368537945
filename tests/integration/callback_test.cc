// Completion callbacks (webhooks): a submit with ?callback=URL gets the job's
// status document POSTed to URL once the job is terminal, signed per the
// Standard Webhooks spec, retried with backoff, durable across restarts, and
// refused at submit time when the URL points inside the network (SSRF guard).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "harness.h"
#include "webhook_receiver.h"

namespace acceptd::itest {
namespace {

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string CallbackConfig(std::string_view extra = "") {
  return std::string("[callbacks]\nsecret = \"") + kSecret +
         "\"\nallow = [\"127.0.0.0/8\"]\npoll_interval = 0.05\n"
         "backoff = { base = 0.05, max = 0.2, jitter = 0 }\n" +
         std::string(extra);
}

std::string Query(std::string_view url) {
  return "?callback=" + boost::urls::encode(url, boost::urls::unreserved_chars);
}

void ExpectSignedBy(const ReceivedRequest& r, std::string_view secret) {
  const std::string id = r.Header("webhook-id");
  const std::string ts = r.Header("webhook-timestamp");
  EXPECT_EQ(r.Header("webhook-signature"), ExpectedWebhookSignature(secret, id, ts, r.body));
  const int64_t sent = std::stoll(ts);
  EXPECT_NEAR(static_cast<double>(sent), static_cast<double>(NowMillis() / 1000), 60.0);
}

TEST(IntegrationCallbackTest, DeliversTheSignedStatusDocumentWhenTheJobSucceeds) {
  WebhookReceiver receiver({204});
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));
  const std::string id =
      s.SubmitOk("greeting", R"({"name":"dummy user"})", Query(receiver.Url("/hooks/a?x=1")));
  ASSERT_TRUE(receiver.WaitForRequests(1));
  const ReceivedRequest r = receiver.requests().at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/a?x=1");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("webhook-id"), "msg_" + id);
  ExpectSignedBy(r, kSecret);
  json::value doc = boost::json::parse(r.body);
  EXPECT_EQ(Str(doc, "id"), id);
  EXPECT_EQ(Str(doc, "state"), "succeeded");
  EXPECT_EQ(Str(doc, "result_url"), "/v1/jobs/" + id + "/result");

  // The delivery is recorded in the job's document.
  ASSERT_TRUE(WaitFor([&] { return !IsNull(s.Job(id).at("callback"), "delivered_at"); }, 10s));
  json::object job = s.Job(id);
  const json::value& cb = job.at("callback");
  EXPECT_EQ(Str(cb, "url"), receiver.Url("/hooks/a?x=1"));
  EXPECT_EQ(Int(cb, "attempts"), 1);
  EXPECT_EQ(Int(cb, "last_status"), 204);
  EXPECT_TRUE(IsNull(cb, "next_attempt_at"));
  EXPECT_TRUE(IsTimestamp(Str(cb, "delivered_at")));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(receiver.requests().size(), 1u) << "delivered once, not again";
}

TEST(IntegrationCallbackTest, FailedAndCanceledJobsAreDeliveredToo) {
  WebhookReceiver receiver({200});
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));
  const std::string failed =
      s.SubmitOk("fail", R"({"message":"boom"})", Query(receiver.Url()) + "&max_attempts=1");
  const std::string canceled =
      s.SubmitOk("sleep", R"({"ms":10})", Query(receiver.Url()) + "&delay=60");
  ASSERT_EQ(s.Post("/v1/jobs/" + canceled + "/cancel").status, 200);
  ASSERT_TRUE(receiver.WaitForRequests(2));
  std::map<std::string, json::value> by_id;
  for (const ReceivedRequest& r : receiver.requests()) {
    json::value doc = boost::json::parse(r.body);
    by_id[Str(doc, "id")] = doc;
  }
  ASSERT_TRUE(by_id.count(failed));
  ASSERT_TRUE(by_id.count(canceled));
  EXPECT_EQ(Str(by_id[failed], "state"), "failed");
  EXPECT_EQ(Str(by_id[failed].at("error"), "message"), "boom");
  EXPECT_EQ(Str(by_id[canceled], "state"), "canceled");
}

TEST(IntegrationCallbackTest, RetriesWithBackoffOnErrorsThenRecordsTheDelivery) {
  WebhookReceiver receiver({500, 503, 200});
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));
  const std::string id = s.SubmitOk("echo", R"({"x":1})", Query(receiver.Url()));
  ASSERT_TRUE(receiver.WaitForRequests(3));
  auto requests = receiver.requests();
  for (const ReceivedRequest& r : requests) {
    EXPECT_EQ(r.Header("webhook-id"), "msg_" + id) << "one message id across retries";
    ExpectSignedBy(r, kSecret);
  }
  ASSERT_TRUE(WaitFor([&] { return !IsNull(s.Job(id).at("callback"), "delivered_at"); }, 10s));
  const json::object job = s.Job(id);
  EXPECT_EQ(Int(job.at("callback"), "attempts"), 3);
  EXPECT_EQ(Int(job.at("callback"), "last_status"), 200);
}

TEST(IntegrationCallbackTest, GivesUpAfterMaxAttemptsAndSaysSo) {
  WebhookReceiver receiver({500});
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig("max_attempts = 3\n")));
  const std::string id = s.SubmitOk("echo", "{}", Query(receiver.Url()));
  ASSERT_TRUE(receiver.WaitForRequests(3));
  ASSERT_TRUE(WaitFor([&] { return Int(s.Job(id).at("callback"), "attempts") == 3; }, 10s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(receiver.requests().size(), 3u);
  const json::object job = s.Job(id);
  const json::value& cb = job.at("callback");
  EXPECT_EQ(Int(cb, "last_status"), 500);
  EXPECT_TRUE(IsNull(cb, "delivered_at"));
  EXPECT_TRUE(IsNull(cb, "next_attempt_at")) << "no further attempt is planned";
}

TEST(IntegrationCallbackTest, AnUnreachableReceiverIsRetriedAndTheErrorShown) {
  const uint16_t port = FreePort();  // nobody listens there
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  const std::string id = s.SubmitOk("echo", "{}", Query(url));
  ASSERT_TRUE(WaitFor([&] { return Int(s.Job(id).at("callback"), "attempts") >= 2; }, 10s));
  const json::object job = s.Job(id);
  EXPECT_TRUE(IsNull(job.at("callback"), "last_status"));
  EXPECT_NE(Str(job.at("callback"), "last_error"), "<missing>");
}

TEST(IntegrationCallbackTest, APendingDeliverySurvivesACrashAndIsDeliveredAfterRestart) {
  const uint16_t port = FreePort();  // the receiver is down while the job completes
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  const std::string id = s.SubmitOk("greeting", R"({"name":"x"})", Query(url));
  s.WaitState(id, "succeeded");
  ASSERT_TRUE(WaitFor([&] { return Int(s.Job(id).at("callback"), "attempts") >= 1; }, 10s));
  s.Kill();
  WebhookReceiver receiver({200}, port);
  s.Restart();
  ASSERT_TRUE(receiver.WaitForRequests(1));
  const ReceivedRequest r = receiver.requests().at(0);
  EXPECT_EQ(r.Header("webhook-id"), "msg_" + id);
  ExpectSignedBy(r, kSecret);
  ASSERT_TRUE(WaitFor([&] { return !IsNull(s.Job(id).at("callback"), "delivered_at"); }, 10s));
}

TEST(IntegrationCallbackTest, SsrfGuardRefusesInternalAddressesAtSubmit) {
  ServerProcess s(
      ServerOptions().WithQueues(std::string("[callbacks]\nsecret = \"") + kSecret + "\"\n"));
  for (const char* url :
       {"http://127.0.0.1:9/x", "http://localhost/x", "http://2130706433/", "http://0x7f000001/",
        "http://0177.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/",
        "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/",
        "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/", "http://[fe80::1]/",
        "http://224.0.0.1/", "http://[ff02::1]/", "http://[::]/"}) {
    HttpResponse res = s.Submit("echo", "{}", Query(url));
    EXPECT_EQ(res.status, 400) << url << ": " << res.body;
    if (res.status == 400) {
      EXPECT_EQ(Str(res.Json(), "option"), "callback") << url;
    }
  }
  for (const char* url : {"ftp://example.com/", "not a url", "http://user:pw@example.com/"}) {
    EXPECT_EQ(s.Submit("echo", "{}", Query(url)).status, 400) << url;
  }
  EXPECT_EQ(Int(s.Queue("echo"), "depth"), 0) << "nothing was accepted";
}

// Issue 8: Boost.URL 1.81 took a dotted-IPv4 prefix of the host as the whole
// host: "http://127.0.0.2%40127.0.0.1:P/c" was delivered to 127.0.0.2:80 with
// the target "%40127.0.0.1:P/c", and "http://127.0.0.1.:P/hook" to
// 127.0.0.1:80 with the target ".:P/hook". A callback goes where its URL
// says, or is refused when the URL is ambiguous.
TEST(IntegrationCallbackTest, CallbackHostBeginningWithIpv4GoesWhereItsUrlSays) {
  WebhookReceiver receiver({204});
  ServerProcess s(ServerOptions().WithQueues(CallbackConfig()));  // loopback allow-listed
  const std::string port = std::to_string(receiver.port());
  HttpResponse res = s.Submit("echo", "{}", Query("http://127.0.0.2%40127.0.0.1:" + port + "/c"));
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(Str(res.Json(), "detail").find("percent-encoded"), std::string::npos) << res.body;
  res = s.Submit("echo", "{}", Query("http://user@127.0.0.1:" + port + "/c"));
  EXPECT_EQ(res.status, 400) << res.body;

  // One trailing dot: the whole host is the IPv4 literal 127.0.0.1.
  s.SubmitOk("echo", "{}", Query("http://127.0.0.1.:" + port + "/hook?x=1"));
  ASSERT_TRUE(receiver.WaitForRequests(1, 10s)) << "not delivered to the URL's port";
  EXPECT_EQ(receiver.requests().at(0).target, "/hook?x=1");
}

TEST(IntegrationCallbackTest, CallbacksAreRefusedWhenNoSecretIsConfigured) {
  ServerProcess s;
  HttpResponse res = s.Submit("echo", "{}", Query("http://93.184.216.34/hook"));
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_EQ(res.Header("Content-Type"), "application/problem+json");
}

}  // namespace
}  // namespace acceptd::itest
