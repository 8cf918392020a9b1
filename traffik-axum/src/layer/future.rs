//! [`ResponseFuture`]: the response future of a [`ThrottleService`](super::ThrottleService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use http::HeaderMap;
use pin_project_lite::pin_project;

pub(super) type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project! {
    /// The response future of a [`ThrottleService`].
    pub struct ResponseFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        // Allowed without awaiting: the inner service's future.
        Inner {
            #[pin]
            future: F,
            headers: HeaderMap,
        },
        // Refused without awaiting.
        Ready {
            response: Option<Response>,
        },
        // The asynchronous path.
        Boxed {
            future: BoxedResponse<E>,
        },
    }
}

impl<F, E> ResponseFuture<F, E> {
    pub(super) fn inner(future: F, headers: HeaderMap) -> Self {
        ResponseFuture {
            state: State::Inner { future, headers },
        }
    }

    pub(super) fn ready(response: Response) -> Self {
        ResponseFuture {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(super) fn boxed(future: BoxedResponse<E>) -> Self {
        ResponseFuture {
            state: State::Boxed { future },
        }
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, headers } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                add_headers(&mut response, std::mem::take(headers));
                Poll::Ready(Ok(response))
            }
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Inner { .. } => "ResponseFuture::Inner",
            State::Ready { .. } => "ResponseFuture::Ready",
            State::Boxed { .. } => "ResponseFuture::Boxed",
        })
    }
}

/// Adds the rate-limit headers the handler did not set itself.
pub(super) fn add_headers(response: &mut Response, headers: HeaderMap) {
    if headers.is_empty() {
        return;
    }
    let target = response.headers_mut();
    for (name, value) in headers {
        if let Some(name) = name
            && !target.contains_key(&name)
        {
            target.insert(name, value);
        }
    }
}
